"""The cohort runner (tools/cohort.py): a real Dask cluster on loopback gives what the local
process pool and a plain loop give; a stopped run goes on where it was; bad input is refused
with one line and runs nothing."""

import io
import json
import os

import pytest

import cohort

SCENARIO = """
[settings]
basal = [["00:00", 1.0]]
max_bolus = 10.0
max_basal = 5.0

[run]
duration_min = 25

[[actions]]
at_min = 5
bolus = 0.5

[[actions]]
at_min = 15
occlude = true
"""


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "short.toml"
    path.write_text(SCENARIO)
    return str(path)


def _comparable(results):
    """Results without the wall-clock figures, which differ from run to run."""
    out = []
    for result in results:
        result = json.loads(json.dumps(result))
        for key in ("wall_s", "sim_hours_per_wall_s"):
            result["summary"].pop(key)
        out.append(result)
    return out


@pytest.mark.slow
def test_a_dask_cluster_on_loopback_gives_what_the_local_pool_gives(scenario_file, tmp_path):
    from distributed import LocalCluster

    jobs = cohort.scenario_jobs([scenario_file], [1, 2, 3], ["typical", "hard"])
    alone = cohort.run_jobs(jobs, processes=1, progress=False)
    pooled = cohort.run_jobs(jobs, processes=2, out_dir=str(tmp_path / "pool"),
                             progress=False, writer=cohort.write_scenario_files)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        clustered = cohort.run_jobs(jobs, scheduler=cluster.scheduler_address,
                                    out_dir=str(tmp_path / "dask"), progress=False,
                                    writer=cohort.write_scenario_files)
    assert _comparable(clustered) == _comparable(pooled) == _comparable(alone)
    # Not all alike: the seeds and the presets are different patients.
    assert len({json.dumps(r["events"]) for r in alone}) > 1
    for folder in ("pool", "dask"):
        with open(tmp_path / folder / "short.hard.seed2" / "events.jsonl") as f:
            lines = [json.loads(line) for line in f]
        assert [e["type"] for e in lines] == [e[2] for e in alone[4]["events"]]


def test_a_stopped_cohort_goes_on_where_it_was(scenario_file, tmp_path):
    out = str(tmp_path / "out")
    jobs = cohort.scenario_jobs([scenario_file], [1, 2, 3], ["typical"])
    first = cohort.run_jobs(jobs, processes=1, out_dir=out, progress=False,
                            writer=cohort.write_scenario_files)
    stamps = {job.key: os.stat(os.path.join(out, job.key, cohort.RESULT)).st_mtime_ns
              for job in jobs}
    # As if stopped while the last job ran: its folder gone, a half-written one left.
    last = jobs[-1].key
    os.rename(os.path.join(out, last), os.path.join(out, last + ".partial-1"))
    bar = io.StringIO()
    again = cohort.run_jobs(jobs, processes=1, out_dir=out, progress=True,
                            writer=cohort.write_scenario_files, stream=bar)
    assert _comparable(again) == _comparable(first)
    for job in jobs[:-1]:  # done before: not run again
        assert os.stat(os.path.join(out, job.key, cohort.RESULT)).st_mtime_ns == stamps[job.key]
    assert os.path.exists(os.path.join(out, last, "events.jsonl"))
    assert "3/3 jobs (2 already done)" in bar.getvalue()


def test_the_command_line_writes_every_job_and_the_cohort_table(scenario_file, tmp_path):
    out = tmp_path / "cli"
    assert cohort.main([scenario_file, "--seeds", "4-5", "--out", str(out), "--processes",
                        "1", "--no-progress"]) == 0
    table = json.loads((out / "cohort.json").read_text())["jobs"]
    assert [row["job"] for row in table] == ["short.typical.seed4", "short.typical.seed5"]
    for row in table:
        assert row["delivered_mu"]["bolus"] == 499  # 0.5 U in whole steps
        summary = json.loads((out / row["job"] / "summary.json").read_text())
        assert summary["delivered_mu"] == row["delivered_mu"]


@pytest.mark.parametrize("args, message", [
    (["--seeds", "5-2"], "--seeds: '5-2' is not a range of seeds from 0 up"),
    (["--seeds", "x"], "--seeds: 'x' is not a seed or a range like 1-20"),
    (["--presets", "soft"], "--presets: 'soft' is not one of typical, hard, easy"),
    (["--processes", "0"], "--processes: at least 1"),
    (["--scheduler", "localhost:8786"],
     "--scheduler 'localhost:8786': expected an address like tcp://host:8786"),
])
def test_bad_input_is_refused_in_one_line_and_runs_nothing(scenario_file, tmp_path, capsys,
                                                           args, message):
    out = tmp_path / "bad"
    assert cohort.main([scenario_file, "--out", str(out), "--no-progress"] + args) == 2
    err = capsys.readouterr().err
    assert err == "cohort error: %s\n" % message
    assert not out.exists() or not any(out.iterdir())


def test_a_bad_scenario_is_named_before_anything_runs(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\nduration_h = -1\n")
    assert cohort.main([str(bad), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cohort error: run.duration_h") and err.count("\n") == 1
