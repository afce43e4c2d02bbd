"""The crash of a process, as tests simulate it."""


class ProcessCrashed(BaseException):  # named for what it simulates
    """Raised by FakeJobRunner to stand for the orchestrator process dying mid-run.

    A BaseException, like the SystemExit of a killed process, so the engine's error
    handling does not clean up after it, exactly as after a real crash.
    """
