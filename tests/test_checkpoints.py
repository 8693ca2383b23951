import json

import pytest
import torch

from sculpting.infrastructure.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from sculpting.domains.grid import GridEnv
from sculpting.gflownet.classifier import SculptingClassifier
from sculpting.gflownet.io import load_classifier, load_gflownet, save_classifier, save_gflownet
from sculpting.gflownet.policy import GFlowNet


def test_round_trip_with_metadata(tmp_path):
    env = GridEnv(8, 2, "circle1", 0.7)
    m = GFlowNet(env, hidden=32)
    path = save_gflownet(m, tmp_path / "b.pt", seed=3, train_config={"steps": 1})
    back = load_gflownet(path)
    s = env.all_states()
    assert torch.equal(back.log_probs(s), m.log_probs(s))
    assert back.env.config == env.config
    meta = json.loads((tmp_path / "b.json").read_text())
    assert meta["seed"] == 3 and meta["kind"] == "gflownet" and "torch" in meta["versions"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    clf = SculptingClassifier(env, 3, 3, hidden=16)
    back = load_classifier(save_classifier(clf, tmp_path / "c.pt"))
    assert torch.equal(back.nonterminal_log_joint(s), clf.nonterminal_log_joint(s))


def test_corrupt_and_truncated_files(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_gflownet(bad)
    good = save_gflownet(GFlowNet(GridEnv(4, 2, "corners"), hidden=8), tmp_path / "g.pt")
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_gflownet(good)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_gflownet(tmp_path / "missing.pt")


def test_wrong_kind_and_mismatched_weights(tmp_path):
    path = save_gflownet(GFlowNet(GridEnv(4, 2, "corners"), hidden=8), tmp_path / "g.pt")
    with pytest.raises(CheckpointError, match="holds a 'gflownet', expected a 'classifier'"):
        load_classifier(path)
    # metadata that promises another architecture than the weights
    sd, meta = load_checkpoint(path, "gflownet")
    meta["arch"]["hidden"] = 16
    save_checkpoint(
        tmp_path / "lie.pt", "gflownet", sd, {k: v for k, v in meta.items() if k not in ("kind", "versions")}
    )
    with pytest.raises(CheckpointError, match="does not match"):
        load_gflownet(tmp_path / "lie.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a sculpting checkpoint"):
        load_gflownet(tmp_path / "plain.pt")


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"format": "sculpting-checkpoint-v2", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        load_gflownet(tmp_path / "evil.pt")


@pytest.mark.parametrize(
    "fmt, message",
    [
        ("sculpting-checkpoint-v1", "retired checkpoint format v1"),
        ("sculpting-checkpoint-v3", "format v3 by a newer sculpting"),
        ("sculpting-checkpoint-vX", "not a sculpting checkpoint"),
        (7, "not a sculpting checkpoint"),
    ],
)
def test_format_is_checked_first_and_never_skips_the_checksum(tmp_path, fmt, message):
    """A file relabelled as another format is refused, by name; no format loads without its checksum."""
    path = save_gflownet(GFlowNet(GridEnv(4, 2, "corners"), hidden=8, seed=0), tmp_path / "g.pt")
    payload = torch.load(path, weights_only=True)
    payload["format"] = fmt
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=message):
        load_gflownet(path)


def test_checkpoint_of_a_newer_sculpting_is_refused(tmp_path):
    import sculpting

    sd = {"w": torch.zeros(2)}
    path = save_checkpoint(tmp_path / "x.pt", "thing", sd, {})
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["meta_json"])
    meta["versions"]["sculpting"] = "9.9.9"
    payload["meta_json"] = json.dumps(meta)
    from sculpting.infrastructure.checkpoints import state_digest

    payload["sha256"] = state_digest(payload["state_dict"], payload["meta_json"])
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=f"sculpting 9.9.9, newer than this {sculpting.__version__}"):
        load_checkpoint(path, "thing")
    meta["versions"]["sculpting"] = "0.0.1"
    payload["meta_json"] = json.dumps(meta)
    payload["sha256"] = state_digest(payload["state_dict"], payload["meta_json"])
    torch.save(payload, path)
    assert torch.equal(load_checkpoint(path, "thing")[0]["w"], sd["w"])
