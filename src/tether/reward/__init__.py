"""Reward model as a product: training, held-out evaluation, bias probes and the gate before RL.

tether rm train            # Bradley-Terry on the latest export
tether rm eval --gate      # accuracy, calibration, baselines; exit 3 on a failed gate
tether rm probe            # counterfactual edits that should not raise reward
"""
