"""Regression tests of the reliability issues: each fails on the code before its fix."""

import math

import pytest
import torch

import sculpting as sc
from sculpting.algebra import Composition


# ------------------------------------------------------------------ algebra validation
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Composition(2.7, (1,)), "n_bases must be an integer"),
        (lambda: Composition(2, (1.9,)), "observation label must be an integer"),
        (lambda: Composition(2, (1, 2), ((math.nan, 0.5), (0.5, 0.5))), "positive weights"),
        (lambda: Composition(2, (1, 2), ((0.5, 0.5), (math.inf, 0.5))), "positive weights"),
    ],
)
def test_bad_compositions_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "lp, match",
    [
        (torch.tensor([[0, 1], [1, 0]]), "floating point"),
        (torch.tensor([[math.nan, 0.0], [0.0, 0.0]]), "NaN or \\+inf"),
        (torch.tensor([[math.inf, 0.0], [0.0, 0.0]]), "NaN or \\+inf"),
        (torch.tensor([[-math.inf, -math.inf], [0.0, 0.0]]), "no mass"),
        (torch.tensor([[0.0, -math.inf], [-math.inf, 0.0]]), "no support"),
    ],
)
def test_bad_base_log_probs_are_refused(lp, match):
    with pytest.raises(ValueError, match=match):
        Composition.two_base("harmonic").target_log_prob(lp)


def test_mixture_of_disjoint_bases_is_fine():
    lp = torch.tensor([[0.0, -math.inf], [-math.inf, 0.0]])
    assert torch.allclose(Composition.two_base("mixture", 0.3).target_log_prob(lp).exp(), torch.tensor([0.3, 0.7]))


def test_infinite_gamma_is_refused():
    bases, clf = sc.load_pretrained("mnist/M1_M2")
    for g in (math.inf, math.nan, -1.0):
        with pytest.raises(ValueError, match=r"gamma must be a (finite number|number in \[0, 100\])"):
            sc.compose(bases, clf, "contrast", gamma=g)


# ------------------------------------------------------------------ checkpoints
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402

from sculpting.infrastructure.checkpoints import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from sculpting.domains.grid.io import PRETRAINED_DIR as GRID  # noqa: E402
from sculpting.gflownet.io import load_gflownet  # noqa: E402


def _resave(tmp_path, edit_meta):
    """A copy of a shipped base whose metadata was edited *and* re-checksummed (what a careless tool
    or an attacker would write): the loader must still refuse what does not match the weights."""
    sd, meta = load_checkpoint(GRID / "base_shubert.pt", "gflownet")
    meta = json.loads(json.dumps(meta))
    edit_meta(meta)
    out = tmp_path / "edited.pt"
    save_checkpoint(out, "gflownet", sd, {k: v for k, v in meta.items() if k not in ("kind", "versions")})
    return out


def test_metadata_asking_for_a_huge_network_is_refused_without_allocating(tmp_path):
    p = _resave(tmp_path, lambda m: m["arch"].update(hidden=100000))
    t0 = time.perf_counter()
    with pytest.raises(
        CheckpointError,
        match=r"edited\.pt: its metadata does not describe a valid model .*hidden must lie in \[1, 16384\]",
    ):
        load_gflownet(p)
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m.pop("arch"), "lacks its 'env' or 'arch'"),
        (lambda m: m["arch"].update(width=3), "does not describe a valid model"),
        (lambda m: m["env"].update(horizon="big"), "cannot rebuild its grid environment"),
    ],
)
def test_bad_metadata_is_a_checkpoint_error_naming_the_file(tmp_path, edit, match):
    with pytest.raises(CheckpointError, match=match) as e:
        load_gflownet(_resave(tmp_path, edit))
    assert "edited.pt" in str(e.value)


def test_flipped_bytes_and_edited_metadata_are_detected(tmp_path):
    data = bytearray((GRID / "base_sigmoid.pt").read_bytes())
    # 64 flipped bytes inside the weights (the tensor data records of the zip archive)
    start = data.find(b"data/0") + 200
    for i in range(start, start + 64):
        data[i] ^= 0xFF
    (tmp_path / "flipped.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="flipped.pt"):
        load_gflownet(tmp_path / "flipped.pt")
    # a changed temperature without a matching checksum
    import torch

    payload = torch.load(GRID / "base_sigmoid.pt", weights_only=True)
    meta = json.loads(payload["meta_json"])
    meta["env"]["temperature"] = 0.25
    payload["meta_json"] = json.dumps(meta)
    torch.save(payload, tmp_path / "temp.pt")
    with pytest.raises(CheckpointError, match="temp.pt is corrupt"):
        load_gflownet(tmp_path / "temp.pt")
    (tmp_path / "cut.pt").write_bytes((GRID / "base_sigmoid.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="cut.pt is corrupt or unreadable"):
        load_gflownet(tmp_path / "cut.pt")


def test_the_pt_is_the_source_of_truth_and_writes_follow_the_umask(tmp_path):
    shutil.copy(GRID / "base_sigmoid.pt", tmp_path / "b.pt")
    (tmp_path / "b.json").write_text('{"env": {"temperature": 99}}')  # a kill between .pt and .json
    assert load_gflownet(tmp_path / "b.pt").env.temperature == 1.0
    stale = tmp_path / ".c.pt.abc123.tmp"
    stale.write_text("left by a killed writer")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    old = os.umask(0o027)
    try:
        sd, meta = load_checkpoint(GRID / "base_sigmoid.pt", "gflownet")
        save_checkpoint(tmp_path / "c.pt", "gflownet", sd, {"env": meta["env"], "arch": meta["arch"]})
    finally:
        os.umask(old)
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o640
    assert not stale.exists()
    assert load_gflownet(tmp_path / "c.pt").env.reward_name == "diag_sigmoid"


def test_shipped_checkpoints_carry_a_checksum():
    import torch

    from sculpting.infrastructure.checkpoints import FORMAT, state_digest

    for p in sorted((GRID.parent.parent).glob("*/pretrained/*.pt")):
        payload = torch.load(p, weights_only=True)
        assert payload["format"] == FORMAT and payload["sha256"] == state_digest(
            payload["state_dict"], payload["meta_json"]
        ), p


# ------------------------------------------------------------------ molecule data and rewards
from molecule_data import needs_data  # noqa: E402  (the one rule)


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    from sculpting.domains.molecules import data as mdata

    src = mdata.data_dir()
    dst = tmp_path / "data"
    shutil.copytree(src, dst)
    monkeypatch.setenv("SCULPTING_DATA_DIR", str(dst))
    return dst


@needs_data
def test_tampered_or_truncated_data_files_are_named(data_copy):
    import numpy as np

    from sculpting.domains.molecules.data import CorruptDataError, load_fragments, load_proxy_params

    with np.load(data_copy / "seh_proxy" / "best_params.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["p02"] = arrays["p02"] * 3
    np.savez(data_copy / "seh_proxy" / "best_params.npz", **arrays)
    with pytest.raises(CorruptDataError, match=r"best_params.npz is not the pinned one.*download"):
        load_proxy_params()
    frags = json.loads((data_copy / "fragments_72.json").read_text())
    frags[0], frags[1] = frags[1], frags[0]
    (data_copy / "fragments_72.json").write_text(json.dumps(frags))
    with pytest.raises(CorruptDataError, match="fragments_72.json is not the pinned one"):
        load_fragments()
    (data_copy / "fragments_72.json").write_text(json.dumps(frags)[:100])
    with pytest.raises(CorruptDataError, match="fragments_72.json"):
        load_fragments()


@needs_data
def test_a_same_size_edit_with_its_mtime_restored_is_verified_again(data_copy):
    """The in-process checksum cache is keyed on the inode's change time too: restoring a file's
    size and mtime after an edit does not skip the re-verification."""
    from sculpting.domains.molecules.data import CorruptDataError, load_fragments

    load_fragments()  # verified and cached
    path = data_copy / "fragments_72.json"
    st = path.stat()
    data = path.read_bytes()
    i = data.index(b"C")
    path.write_bytes(data[:i] + b"N" + data[i + 1 :])  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(CorruptDataError, match="fragments_72.json is not the pinned one"):
        load_fragments()


def test_fragment_attachment_indices_are_validated():
    from sculpting.domains.molecules.data import CorruptDataError, validate_fragments

    assert validate_fragments([("CO", [0, 1])]) == [("CO", [0, 1])]
    for bad in ([("CO", [2])], [("CO", [0, 0])], [("C(", [0])], [("CO", [])]):
        with pytest.raises(CorruptDataError, match="fragment 0"):
            validate_fragments(bad)


@needs_data
def test_rewards_take_molecules_or_smiles_and_refuse_the_rest():
    from rdkit import Chem

    from sculpting.domains.molecules import seh_reward
    from sculpting.domains.molecules.metrics import high_low_table
    from sculpting.domains.molecules.rewards import compute_rewards

    r = compute_rewards(["CCO", Chem.MolFromSmiles("CCO"), None, "not a smiles"])
    for name, v in r.items():
        assert abs(float(v[0] - v[1])) < 1e-6 and v[2] == v[3], name
    assert float(r["qed"][0]) > 0.3 and float(r["mw"][0]) == 1.0
    for bad, match in ((None, "got NoneType"), ("CCO", "got str"), ([3.5], "item 0 is a float")):
        with pytest.raises(TypeError, match=match):
            seh_reward(bad)
    with pytest.raises(ValueError, match="different lengths"):
        high_low_table({"seh": [0.1, 0.9], "sa": [0.7]})


def test_setup_fetches_missing_data_or_says_why(tmp_path, monkeypatch, capsys):
    import urllib.error

    from sculpting.domains.molecules import data

    monkeypatch.setenv("SCULPTING_DATA_DIR", str(tmp_path / "none"))
    calls = []

    def offline(target=None):
        calls.append(target)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(data, "download", offline)
    assert data.ensure_data() is False and calls == [tmp_path / "none"]
    assert "could not be downloaded" in capsys.readouterr().err
    (tmp_path / "none" / "seh_proxy").mkdir(parents=True)
    (tmp_path / "none" / "fragments_72.json").write_text("[]")
    (tmp_path / "none" / "seh_proxy" / "best_params.npz").write_bytes(b"")
    assert data.ensure_data() is True and len(calls) == 1


def test_parameter_validation_reports_every_problem():
    from sculpting.lab.validation import ParameterError, validate_parameters

    ok = {"a": 3, "b": 0.5, "c": "paper", "d": None, "e": [0.1, 0.9], "f": ["12", "mixture"], "g": [["contrast", 0.05]]}
    rules = {
        "a": "int>0",
        "b": "alpha",
        "c": "one of anchored|paper",
        "d": "dir?",
        "e": "list of alpha",
        "f": "list of labels:3",
        "g": "list of two_way",
    }
    validate_parameters(ok, rules)
    bad = {"a": 0, "b": 1.0, "c": "fast", "d": "/no/such/dir", "e": "[0.1]", "f": ["14"], "g": [["contrast", 2]]}
    with pytest.raises(ParameterError) as e:
        validate_parameters(bad, rules)
    assert all(f"{k} = " in str(e.value) for k in rules)
    with pytest.raises(ParameterError, match="a: missing"):
        validate_parameters({}, {"a": "int>0"})
    with pytest.raises(ParameterError, match="True or False"):
        validate_parameters({"x": 1}, {"x": "bool"})
    with pytest.raises(ParameterError, match="integer > 0"):
        validate_parameters({"x": True}, {"x": "int>0"})
