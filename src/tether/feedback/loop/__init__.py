"""`tether loop` as a library: the state machine, its steps, and targeted relabeling after a failed gate.

    from tether.feedback.loop import LoopConfig, default_steps, run_loop
    result = run_loop(project, LoopConfig(iterations=2), default_steps(), say=print)

`machine` orders the steps and records each one; `label_steps`, `reward_steps`, `rl_steps` and
`diagnose_step` call the stages' libraries; `remediation` plans the targeted batch a failed gate
asks for. The CLI (`tether loop`, `tether demo`) only passes `say` and `LoopHooks`.
"""

from __future__ import annotations

from tether.feedback.loop.machine import (
    LOOP_NOTE,
    RESUME_AT,
    STEPS,
    IterationContext,
    LoopConfig,
    LoopHooks,
    LoopResult,
    Step,
    StepOutcome,
    pending_steps,
    run_iteration,
    run_loop,
)

__all__ = [
    "LOOP_NOTE",
    "RESUME_AT",
    "STEPS",
    "IterationContext",
    "LoopConfig",
    "LoopHooks",
    "LoopResult",
    "Step",
    "StepOutcome",
    "default_steps",
    "pending_steps",
    "run_iteration",
    "run_loop",
]


def default_steps() -> dict[str, Step]:
    """Each step's name -> the function that runs it (imported on call: they load torch)."""
    from tether.feedback.loop import diagnose_step, label_steps, reward_steps, rl_steps

    return {
        "plan": label_steps.plan,
        "collect": label_steps.collect,
        "reward": reward_steps.reward,
        "gate": reward_steps.gate,
        "rl": rl_steps.rl,
        "evals": rl_steps.evals,
        "diagnose": diagnose_step.diagnose,
    }
