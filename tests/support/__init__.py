"""What the tests share: reference implementations, fakes of outside services, the
real services as fixtures, and scripts tests run as subprocesses."""
