"""The collector paused around heavy imports comes back as it was, even after an error."""

import gc

import pytest

from llmflow.gc_pause import gc_paused


def test_the_collector_is_paused_within_and_back_after():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_within_still_brings_it_back():
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("failed while importing")
    assert gc.isenabled()


def test_a_collector_the_caller_had_paused_stays_paused():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
