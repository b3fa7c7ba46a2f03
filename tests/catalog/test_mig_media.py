"""Media-extension (+me) MIG profiles for every MIG GPU of the catalog (NVIDIA MIG user guide,
supported profiles: one "+me" 1g profile per GPU, profile ID 20)."""

import pytest

from gpuinfra.catalog.gpus import gpu_models
from gpuinfra.errors import UserError
from gpuinfra.models.mig import Instance, mig_profiles, profile, why_not

# the +me profile name per GPU, as the MIG user guide's tables print it
GUIDE_ME = {
    "A100-40GB": "1g.5gb+me",
    "A100-80GB": "1g.10gb+me",
    "H100-SXM": "1g.10gb+me",
    "H100-PCIe": "1g.10gb+me",
    "H200": "1g.18gb+me",
    "B200": "1g.23gb+me",
}


def test_every_mig_gpu_has_its_media_extension_profile():
    assert {m.name for m in gpu_models() if m.mig} == set(GUIDE_ME)
    for gpu, name in GUIDE_ME.items():
        me = [p for p in mig_profiles(gpu) if p.media_engines]
        assert [p.name for p in me] == [name], gpu
        assert (me[0].profile_id, me[0].max_count, me[0].compute_slices, me[0].memory_slices) == (20, 1, 1, 1)


def test_b200_me_profile_from_issue_14():
    p = profile("B200", "1g.23gb+me")
    assert p.profile_id == 20 and p.max_count == 1
    # the Warewulf example layout: 1g.23gb+me with six 1g.23gb fills the 7 compute slices
    state: list[Instance] = [Instance(p, 0)]
    plain = profile("B200", "1g.23gb")
    for s in range(1, 7):
        assert why_not(state, plain, s) is None
        state.append(Instance(plain, s))
    assert why_not([Instance(p, 0)], p, 1) is not None  # one +me per GPU


def test_unknown_profile_is_named():
    with pytest.raises(UserError, match="1g.23gb\\+me"):
        profile("B200", "1g.23gb+mee")
