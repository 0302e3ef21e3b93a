"""Cohorts: many simulated pumps at once, on a local process pool or an existing Dask cluster.

    .venv/bin/python tools/cohort.py SCENARIO.toml [...] --seeds 1-20 [--presets typical,hard]
        --out DIR [--processes N | --scheduler tcp://HOST:PORT] [--no-progress]

Each job is one scenario (tools/scenario.py) on one virtual patient: a plant preset (the
syringe, the line and the tissue: typical, hard, easy) and a seed (the plant's own draw
within that preset and its noise). Every job writes DIR/<scenario>.<preset>.seed<N>/
(summary.json, events.jsonl, deliveries.csv, outflow.csv, as tools/scenario.py does), and
DIR/cohort.json lists them all. The folder is the record of what is done: a job whose
folder is complete is not run again, so a stopped run started again goes on where it was.

Jobs run in worker processes (the hardware models are per-process state): a local pool of
--processes workers (default: one per core), or the workers of the Dask cluster at
--scheduler, which are sent the tool modules a job needs (Client.upload_file) and must
have the project installed (pip install -e .). The results are the same either way: the
same seed gives the same events.

From Python, ``run_jobs(jobs, ...)`` runs any list of ``Job(key, "module:function",
kwargs)`` whose function returns something JSON can hold (tools/bench_safety.py does).
"""

import argparse
import concurrent.futures
import csv
import importlib
import json
import multiprocessing
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = ("typical", "hard", "easy")
RESULT = "result.json"  # written last: a job folder with it is done


class CohortError(ValueError):
    """A cohort that cannot run as asked; the message says why."""


class Job:
    """One unit of work: ``key`` names it (and its folder), ``call`` is "module:function"
    (a module in tools/ or installed), run with ``kwargs``."""

    def __init__(self, key, call, kwargs, uploads=()):
        if not key or "/" in key or key.startswith("."):
            raise CohortError("job key %r: a non-empty name without '/'" % (key,))
        self.key = key
        self.call = call
        self.kwargs = kwargs
        # tools/ modules a Dask worker needs besides the call's own, in import order.
        self.uploads = tuple(uploads)

    def __repr__(self):
        return "Job(%r, %r)" % (self.key, self.call)


def run_job(call, kwargs):
    """In a worker: import ``module:function`` and call it with ``kwargs``."""
    module_name, _, function = call.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, function)(**kwargs)


# ----- the output folder ----------------------------------------------------------------


def _job_dir(out_dir, key):
    return os.path.join(out_dir, key)


def load_done(out_dir, key):
    """The stored result of a finished job, or None."""
    if out_dir is None:
        return None
    path = os.path.join(_job_dir(out_dir, key), RESULT)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def store(out_dir, key, result, writer=None):
    """Write a job's folder in a temporary place, then move it into place: a folder under
    its own name is always complete."""
    final = _job_dir(out_dir, key)
    temp = final + ".partial-%d" % os.getpid()
    shutil.rmtree(temp, ignore_errors=True)
    os.makedirs(temp)
    if writer is not None:
        writer(temp, result)
    with open(os.path.join(temp, RESULT), "w") as f:
        json.dump(result, f, sort_keys=True)
        f.write("\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temp, final)


# ----- progress ---------------------------------------------------------------------------


class Progress:
    """A one-line bar on a terminal (stderr); elsewhere a line at every tenth done."""

    def __init__(self, total, skipped, stream=None, enabled=True):
        self.total = total
        self.done = skipped
        self.skipped = skipped
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and total > 0
        self.tty = self.enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.monotonic()
        self._next_line = 0
        self.show()

    def step(self):
        self.done += 1
        self.show()

    def show(self):
        if not self.enabled:
            return
        run = self.done - self.skipped
        elapsed = time.monotonic() - self.started
        left = self.total - self.done
        eta = elapsed / run * left if run else None
        text = "%d/%d jobs%s, %s elapsed%s" % (
            self.done, self.total,
            " (%d already done)" % self.skipped if self.skipped else "",
            _clock(elapsed), ", %s left" % _clock(eta) if eta is not None and left else "")
        if self.tty:
            width = 30
            filled = width * self.done // self.total
            self.stream.write("\r[%s%s] %s " % ("#" * filled, "." * (width - filled), text))
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif self.done >= self._next_line or self.done == self.total:
            self.stream.write("cohort: %s\n" % text)
            self.stream.flush()
            self._next_line = self.done + max(1, self.total // 10)


def _clock(seconds):
    seconds = int(seconds)
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


# ----- running ----------------------------------------------------------------------------


def run_jobs(jobs, processes=None, scheduler=None, out_dir=None, progress=True, writer=None,
             stream=None):
    """Run ``jobs`` (a list of Job), skipping those already done in ``out_dir``; returns
    their results in the order of ``jobs``. ``processes``: local pool size (default one
    per core; 1 runs them here, one after another); ``scheduler``: a Dask scheduler's
    address instead. ``writer(folder, result)`` adds files to each job's folder."""
    keys = [job.key for job in jobs]
    if len(set(keys)) != len(keys):
        raise CohortError("job keys must be unique")
    if scheduler is not None and not str(scheduler).startswith(("tcp://", "tls://",
                                                                 "inproc://")):
        raise CohortError("--scheduler %r: expected an address like tcp://host:8786"
                          % (scheduler,))
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    results = {}
    todo = []
    for job in jobs:
        done = load_done(out_dir, job.key)
        if done is not None:
            results[job.key] = done
        else:
            todo.append(job)
    bar = Progress(len(jobs), len(jobs) - len(todo), stream, progress)

    def finished(job, result):
        result = json.loads(json.dumps(result))  # what a stored result reads back as
        if out_dir is not None:
            store(out_dir, job.key, result, writer)
        results[job.key] = result
        bar.step()

    if scheduler is not None:
        _run_dask(todo, scheduler, finished)
    elif (processes or os.cpu_count() or 1) <= 1 or len(todo) <= 1:
        for job in todo:
            finished(job, run_job(job.call, job.kwargs))
    else:
        _run_pool(todo, processes or os.cpu_count() or 1, finished)
    return [results[key] for key in keys]


def _run_pool(jobs, processes, finished):
    # Spawned workers start clean; each job builds its pump on freshly reset models.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(min(processes, len(jobs)),
                                                mp_context=context) as pool:
        futures = {pool.submit(run_job, job.call, job.kwargs): job for job in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                finished(futures[future], future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _module_file(name):
    path = os.path.join(HERE, name + ".py")
    return path if os.path.exists(path) else None


def _run_dask(jobs, scheduler, finished):
    from distributed import Client, as_completed

    with Client(scheduler, timeout=30) as client:
        # The workers get this module and the tools/ modules the jobs call (installed
        # packages, pump and sim, they must have already).
        sent = set()
        for name in ["cohort"] + [n for job in jobs
                                  for n in job.uploads + (job.call.partition(":")[0],)]:
            path = _module_file(name)
            if path is not None and name not in sent:
                client.upload_file(path)
                sent.add(name)
        futures = {}
        for job in jobs:
            future = client.submit(run_job, job.call, job.kwargs, key="cohort-" + job.key,
                                   pure=False)
            futures[future] = job
        for future in as_completed(list(futures)):
            finished(futures[future], future.result())


# ----- scenario cohorts ---------------------------------------------------------------


def scenario_job(toml_text, name, preset, seed):
    """In a worker: one scenario on one virtual patient; what tools/scenario.py writes."""
    import tomllib

    import scenario as runner

    data = tomllib.loads(toml_text)
    plant = dict(data.get("plant", {}))
    plant["preset"] = preset
    plant["seed"] = seed
    data["plant"] = plant
    result = runner.run(runner.Scenario(data, name))
    summary = result.summary()
    return {
        "summary": summary,
        "deliveries": [list(d) for d in result.deliveries],
        "events": [[seq, t_ms, etype, fields] for seq, t_ms, etype, fields in result.events],
        "outflow": [list(row) for row in result.sim.outflow.rows],
    }


def write_scenario_files(folder, result):
    """The files tools/scenario.py writes, from a scenario job's result."""
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump(result["summary"], f, indent=2)
        f.write("\n")
    with open(os.path.join(folder, "deliveries.csv"), "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(("t_ms", "kind", "steps", "mu"))
        out.writerows(result["deliveries"])
    with open(os.path.join(folder, "events.jsonl"), "w") as f:
        for seq, t_ms, etype, fields in result["events"]:
            record = {"t_ms": t_ms, "type": etype, "seq": seq}
            record.update(fields)
            f.write(json.dumps(record) + "\n")
    with open(os.path.join(folder, "outflow.csv"), "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(("t_ms", "delivered_nl"))
        out.writerows(result["outflow"])


def parse_seeds(text):
    """"1-20", "3", "1,5,9-12" -> a sorted list of distinct seeds (0 .. 2**31-1)."""
    seeds = set()
    for part in str(text).split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise CohortError("--seeds: %r is not a seed or a range like 1-20" % part) from None
        if first < 0 or last < first or last >= 2**31:
            raise CohortError("--seeds: %r is not a range of seeds from 0 up" % part)
        if last - first >= 100_000:
            raise CohortError("--seeds: %r is more than 100000 seeds" % part)
        seeds.update(range(first, last + 1))
    return sorted(seeds)


def scenario_jobs(paths, seeds, presets):
    """One job per scenario file, preset and seed; each file is checked before any runs."""
    import scenario as runner

    jobs = []
    names = set()
    for path in paths:
        runner.load(path)  # the scenario runner's own checks, with its messages
        with open(path) as f:
            text = f.read()
        name = os.path.splitext(os.path.basename(path))[0]
        if name in names:
            raise CohortError("two scenarios named %r" % name)
        names.add(name)
        for preset in presets:
            for seed in seeds:
                jobs.append(Job("%s.%s.seed%d" % (name, preset, seed), "cohort:scenario_job",
                                {"toml_text": text, "name": name, "preset": preset,
                                 "seed": seed}, uploads=("scenario",)))
    return jobs


def cohort_summary(jobs, results):
    """cohort.json: one row per job with its headline figures."""
    rows = []
    for job, result in zip(jobs, results, strict=True):
        summary = result["summary"]
        rows.append({
            "job": job.key,
            "scenario": job.kwargs["name"],
            "preset": job.kwargs["preset"],
            "seed": job.kwargs["seed"],
            "delivered_mu": summary["delivered_mu"],
            "motor_steps": summary["motor_steps"],
            "plant_delivered_nl": summary["plant"]["delivered_nl"],
            "events": summary["events"],
        })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="+", help="scenario files (TOML)")
    parser.add_argument("--seeds", default="0", help="seeds: 1-20, 3 or 1,5,9-12 (default 0)")
    parser.add_argument("--presets", default="typical",
                        help="plant presets, comma-separated: %s" % ", ".join(PRESETS))
    parser.add_argument("--out", required=True, help="output folder (resumable)")
    parser.add_argument("--processes", type=int, default=None,
                        help="local worker processes (default: one per core)")
    parser.add_argument("--scheduler", default=None,
                        help="a Dask scheduler address, tcp://host:port, instead of a pool")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.processes is not None and args.processes < 1:
            raise CohortError("--processes: at least 1")
        if args.processes is not None and args.scheduler is not None:
            raise CohortError("give --processes or --scheduler, not both")
        presets = [p.strip() for p in args.presets.split(",")]
        for preset in presets:
            if preset not in PRESETS:
                raise CohortError("--presets: %r is not one of %s" % (preset, ", ".join(PRESETS)))
        if len(set(presets)) != len(presets):
            raise CohortError("--presets: %r names a preset twice" % args.presets)
        jobs = scenario_jobs(args.scenarios, parse_seeds(args.seeds), presets)
        started = time.perf_counter()
        results = run_jobs(jobs, args.processes, args.scheduler, args.out,
                           not args.no_progress, write_scenario_files)
    except (CohortError, ValueError, OSError) as err:
        print("cohort error: %s" % err, file=sys.stderr)
        return 2
    rows = cohort_summary(jobs, results)
    with open(os.path.join(args.out, "cohort.json"), "w") as f:
        json.dump({"jobs": rows}, f, indent=1)
        f.write("\n")
    print("cohort: %d jobs in %s (%.1f s this run)" % (
        len(jobs), args.out, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
