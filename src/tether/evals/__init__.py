"""Behavioral evaluation independent of the reward model: suites, graders, runs, comparison, red-teaming."""
