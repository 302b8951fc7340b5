"""Shipping a target to a node that lacks it: pack, put in Ray's object store, unpack atomically."""

import io
import tarfile

import pytest

from pareto.results.archive import pack_directory, unpack_directory


def test_round_trip_and_refusal_of_paths_outside(tmp_path):
    src = tmp_path / "target-abc"
    (src / "sub").mkdir(parents=True)
    (src / "manifest.json").write_text("{}")
    (src / "sub" / "w.bin").write_bytes(bytes(range(256)) * 10)
    out = unpack_directory(pack_directory(src), tmp_path / "copy" / "target-abc")
    assert (out / "sub" / "w.bin").read_bytes() == (src / "sub" / "w.bin").read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["target-abc"]  # no temporary left behind

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"x"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(tarfile.TarError):
        unpack_directory(buf.getvalue(), tmp_path / "evil")
    assert not (tmp_path / "escaped.txt").exists()


def test_a_node_without_the_target_unpacks_it_from_the_object_store(tmp_path, embedded_target, monkeypatch):
    import ray

    from trainables.unlearn import local_target

    monkeypatch.setenv("PARETO_CACHE", str(tmp_path / "node-cache"))
    ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        ref = ray.put(pack_directory(embedded_target))
        elsewhere = str(tmp_path / "head-only" / embedded_target.name)  # the driver's path, absent here
        got = local_target({"target_dir": elsewhere, "target_archive": ref})
        assert got == str(tmp_path / "node-cache" / embedded_target.name)
        assert (embedded_target / "model.safetensors").read_bytes() == (tmp_path / "node-cache" / embedded_target.name / "model.safetensors").read_bytes()
        assert local_target({"target_dir": str(embedded_target), "target_archive": ref}) == str(embedded_target)
    finally:
        ray.shutdown()
