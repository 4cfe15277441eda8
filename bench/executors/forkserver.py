"""Imported by the forkserver of the local worker processes (``--jobs N``) as its preload,
and by nothing else: from then on the forkserver is killed when the driver that started it
dies, and with it every worker it forked (each dies with its forkserver), so that no process
outlives a driver killed with SIGKILL."""

from __future__ import annotations

from bench.executors.base import die_with_parent

die_with_parent()
