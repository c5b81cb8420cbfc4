"""Live diagnosis: follow a log as it is written and re-judge the run as points arrive."""
