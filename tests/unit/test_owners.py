"""A lease owner's name tells a claimer on the same machine, and only there, that its
process is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator import procfs
from orchestrator.owners import gone, here, lease_owner
from tests.support.owners import PRINT_OWNER, ended_owner, paused_owner

pytestmark = pytest.mark.skipif(procfs.this_machine() is None, reason="needs Linux's /proc")


def _with_machine(owner: str, machine: str) -> str:
    name, tail = owner.split("@")
    return f"{name}@{machine}.{tail.rsplit('.', 1)[1]}"


def test_this_process_is_not_gone() -> None:
    assert here(lease_owner())
    assert not gone(lease_owner())


def test_a_process_that_ended_is_gone() -> None:
    assert gone(ended_owner())


def test_a_paused_process_is_not_gone() -> None:
    with paused_owner() as owner:
        assert not gone(owner)


def test_an_ended_process_its_parent_has_not_reaped_is_gone() -> None:
    with subprocess.Popen([sys.executable, "-c", PRINT_OWNER], stdout=subprocess.PIPE,
                          text=True) as child:
        assert child.stdout is not None
        owner = child.stdout.readline().strip()
        while (found := procfs.stat(child.pid)) is not None and not found.ended:
            time.sleep(0.01)
        assert gone(owner)  # a zombie until the wait below
        child.wait()


def test_a_pid_taken_by_a_later_process_is_gone() -> None:
    me = procfs.stat(os.getpid())
    assert me is not None
    assert gone(f"{lease_owner().rsplit('.', 1)[0]}.{me.start_time - 1}")


def test_an_owner_of_another_boot_or_pid_namespace_is_not_judged() -> None:
    owner = ended_owner()
    machine = procfs.this_machine()
    assert machine is not None
    for elsewhere in (f"{'0' * 12}.{machine.pid_namespace}",
                      f"{machine.boot}.{machine.pid_namespace + 1}"):
        assert not here(_with_machine(owner, elsewhere))
        assert not gone(_with_machine(owner, elsewhere))


@pytest.mark.parametrize("owner", [None, "", "worker-a", "replica-1", "host:12:ab12cd34"])
def test_an_owner_named_otherwise_is_not_judged(owner: str | None) -> None:
    assert not here(owner)
    assert not gone(owner)


@given(st.text())
def test_any_name_is_judged_without_error(owner: str) -> None:
    assert gone(owner) in (True, False)
