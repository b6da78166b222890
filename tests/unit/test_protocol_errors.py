"""How our errors read to a caller: a remote caller is told a store failure in words it can act on, and never
loses the paths of images it paid for."""

from mcp.types import INTERNAL_ERROR, INVALID_PARAMS

from gpt_image_2_mcp.domain.errors import JobNotFound, StateStoreError
from gpt_image_2_mcp.entrypoints.protocol_errors import for_caller, protocol_error

STORE = "The Redis state store at redis://10.0.0.9:6379/0 cannot be reached. Check the state store URL."


def test_a_remote_caller_is_told_to_try_again_without_where_the_store_is():
    told = for_caller(StateStoreError(STORE), remote=True)
    assert "try again" in told and "10.0.0.9" not in told and "state store URL" not in told
    assert for_caller(StateStoreError(STORE), remote=False) == STORE  # the local user is the operator


def test_a_remote_caller_still_hears_where_the_paid_for_images_are():
    kept = StateStoreError(f"{STORE} The image(s) of this call are saved at: /srv/out/u-1/a.png.")
    kept.saved_paths = ("/srv/out/u-1/a.png",)
    told = for_caller(kept, remote=True)
    assert told.endswith("The image(s) of this call are saved at: /srv/out/u-1/a.png.") and "10.0.0.9" not in told


def test_the_store_failing_is_an_internal_error_and_anything_else_invalid_params():
    assert protocol_error(StateStoreError(STORE), remote=True).error.code == INTERNAL_ERROR
    assert protocol_error(JobNotFound("No job 'x'")).error.code == INVALID_PARAMS
