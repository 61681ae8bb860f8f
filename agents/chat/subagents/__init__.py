"""The chat's subagents, one module per stage; each ``run(task, <its ports>) -> Finding``."""
