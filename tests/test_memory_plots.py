"""The memory pictures: valid PNGs, drawn from the same numbers the JSON report holds."""

import json

import pytest

pytest.importorskip("matplotlib")
import matplotlib.image

from pagedllm.cli import main
from pagedllm.report.plots import BREAKDOWN

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_valid_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 0.01, f"{path} is blank"


@pytest.fixture(scope="module")
def seed_memory_outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots")
    argv = [
        "simulate",
        "--workload",
        "seed-memory",
        "--batch-sizes",
        "10,25",
        "--num-blocks",
        "512",
        "--json",
        str(out / "report.json"),
        "--plots",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    return out, json.loads((out / "report.json").read_text())


def test_seed_memory_writes_three_valid_pngs_each_with_its_numbers(seed_memory_outputs):
    out, _ = seed_memory_outputs
    for name in ("utilization", "breakdown", "block-map"):
        assert_valid_png(out / f"seed-memory-{name}.png")
        assert (out / f"seed-memory-{name}.json").is_file()


def test_utilization_picture_numbers_are_the_reports(seed_memory_outputs):
    out, report = seed_memory_outputs
    drawn = json.loads((out / "seed-memory-utilization.json").read_text())
    sweep = [r for r in report["runs"] if r["study"] == "utilization"]
    assert set(drawn) == {"contiguous", "paged"}
    for run in sweep:
        series = drawn[run["variant"]]
        i = series["batch_size"].index(run["params"]["batch_size"])
        assert series["utilization_at_full_length"][i] == run["summary"]["utilization_at_full_length"]
        assert series["utilization_time_avg"][i] == run["summary"]["utilization_time_avg"]
    assert drawn["contiguous"]["utilization_at_full_length"][0] == pytest.approx(0.244, abs=0.015)


def test_breakdown_picture_numbers_are_the_reports_and_add_up(seed_memory_outputs):
    out, report = seed_memory_outputs
    drawn = json.loads((out / "seed-memory-breakdown.json").read_text())
    capacity = [r for r in report["runs"] if r["study"] == "capacity"]
    assert len(drawn["labels"]) == len(capacity) == 2
    for i, run in enumerate(capacity):
        for name, key, _ in BREAKDOWN:
            assert drawn[name][i] == run["summary"][key]
        assert sum(drawn[name][i] for name, _, _ in BREAKDOWN) == pytest.approx(1.0)
    reservation = dict(zip([r["variant"] for r in capacity], drawn["reservation"], strict=True))
    assert reservation["contiguous"] > 0.3 and reservation["paged"] == 0


def test_block_map_picture_is_the_reports_block_map(seed_memory_outputs):
    out, report = seed_memory_outputs
    drawn = json.loads((out / "seed-memory-block-map.json").read_text())["maps"]
    runs = [r for r in report["runs"] if "block_map" in r]
    assert len(drawn) == len(runs) == 2
    for picture, run in zip(drawn, runs, strict=True):
        for key in ("step", "owner", "num_holders", "num_filled"):
            assert picture[key] == run["block_map"][key]
        used = run["steps"]["num_used_blocks"][picture["step"]]
        counts = picture["counts"]
        assert counts["full"] + counts["tail"] + counts["reserved"] == used
        assert counts["free"] == 512 - used
    contiguous = next(p for p in drawn if p["variant"] == "contiguous")
    assert contiguous["counts"]["reserved"] > contiguous["counts"]["full"]


def test_a_huge_pool_draws_a_bounded_picture_of_runs_of_blocks_with_exact_counts(tmp_path):
    """A 240 GiB pool of small blocks drew one cell per block: 996 x 80,013 pixels in 3.9 GB of memory."""
    from pagedllm.report.plots import MAX_BLOCK_MAP_CELLS, plot_block_map

    num_blocks, block_size = 300_000, 16
    owner = [i // 1000 if i < 200_000 else -1 for i in range(num_blocks)]  # 200 requests, then free
    filled = [block_size if i < 199_000 else 5 if i < 200_000 else 0 for i in range(num_blocks)]
    holders = [2 if i < 10 else 1 if i < 200_000 else 0 for i in range(num_blocks)]
    block_map = {"step": 0, "block_size": block_size, "owner": owner, "num_holders": holders,
                 "num_filled": filled}  # fmt: skip
    path = tmp_path / "huge-block-map.png"
    data = plot_block_map({"runs": [{"variant": "paged", "label": "huge", "block_map": block_map}]}, path)
    assert data["blocks_per_cell"] == -(-num_blocks // MAX_BLOCK_MAP_CELLS) > 1
    assert data["maps"][0]["counts"] == {
        "free": 100_000, "full": 199_000, "tail": 1_000, "reserved": 0, "shared": 10
    }  # fmt: skip
    assert_valid_png(path)
    height, width, _ = matplotlib.image.imread(path).shape
    assert height < 4000 and width < 2000, (height, width)


def test_trace_pictures_mark_shared_blocks(tmp_path):
    argv = [
        "simulate",
        "--workload",
        "shared-prefix",
        "--num-requests",
        "10",
        "--num-blocks",
        "256",
        "--kv-policy",
        "paged",
        "--plots",
        str(tmp_path),
        "--quiet",
    ]
    assert main(argv) == 0
    assert not (tmp_path / "shared-prefix-utilization.png").exists()  # no batch sweep in this workload
    for name in ("breakdown", "block-map"):
        assert_valid_png(tmp_path / f"shared-prefix-{name}.png")
    maps = json.loads((tmp_path / "shared-prefix-block-map.json").read_text())["maps"]
    assert [m["variant"] for m in maps] == ["paged-no-prefix-cache", "paged"]
    assert maps[0]["counts"]["shared"] == 0 and maps[1]["counts"]["shared"] == 12


def test_a_run_without_steps_is_drawn_all_free_and_labelled_no_steps(tmp_path):
    # Every request rejected: it drew an empty chart (all five parts 0) with no word of why.
    trace = tmp_path / "long.csv"
    trace.write_text("prompt_len,output_len\n5000,5\n")
    argv = ["simulate", "--workload", str(trace), "--plots", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    assert_valid_png(tmp_path / "long-breakdown.png")
    drawn = json.loads((tmp_path / "long-breakdown.json").read_text())
    assert drawn["free"] == [1.0, 1.0]
    assert all(label.endswith("(no steps)") for label in drawn["labels"])
