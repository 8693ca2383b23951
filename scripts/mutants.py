"""A curated mutation check: each entry plants one bug in the method core and names the tests that
must catch it. Every mutant runs in a scratch copy of the repository (the working tree is never
touched): the named tests must fail (or time out, for a bug that hangs), and the unmutated copy
must pass them. Prints a table; exits 1 if any mutant survives.

    .venv/bin/python scripts/mutants.py              # every entry (about 10 minutes on 2 cores)
    .venv/bin/python scripts/mutants.py --only smc   # the entries whose id contains "smc"

Not run in CI (too slow); run it after changing the method core or its tests (docs/testing.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    id: str
    what: str
    file: str
    old: str
    new: str
    tests: tuple
    timeout: float | None = None  # seconds (default: --timeout); a hang counts as caught


MUTANTS = [
    Mutant(
        "gflownet-draw-keeps-steps",
        "a GFlowNet draw silently drops steps= / progress= instead of refusing them",
        "sculpting/families.py",
        "        if steps is not None or progress:\n            raise TypeError(",
        "        if False:\n            raise TypeError(",
        ("tests/test_sampler_family.py::test_each_family_builds_its_own_options_and_refuses_what_it_ignores",),
    ),
    Mutant(
        "diffusion-smc-log-z-shift",
        "the SMC driver's log Ẑ shifted by 0.5 (Ẑ · e^0.5; every sampler's, caught by the diffusion closed form)",
        "sculpting/smc_core.py",
        "    tracker.finish()\n    return tracker, outputs, stats",
        "    tracker.finish()\n    tracker.log_z += 0.5\n    return tracker, outputs, stats",
        ("tests/test_smc.py::test_diffusion_log_z_is_unbiased_against_the_closed_form",),
    ),
    Mutant(
        "smc-weights-not-reset",
        "SMC weights not reset after resampling",
        "sculpting/smc_core.py",
        "        self.log_w[which] = 0.0\n",
        "",
        ("tests/test_smc.py",),
    ),
    Mutant(
        "smc-resampling-ignores-weights",
        "resampling that ignores the weights (uniform ancestors)",
        "sculpting/smc_core.py",
        "idx = systematic_resample(self.log_w[which], self.generator)",
        "idx = systematic_resample(torch.zeros_like(self.log_w[which]), self.generator)",
        ("tests/test_smc.py",),
    ),
    Mutant(
        "smc-weights-not-reset-contract",
        "SMC weights not reset after resampling (the contract suite's noisy-twist, base-proposal case)",
        "sculpting/smc_core.py",
        "        self.log_w[which] = 0.0\n",
        "",
        ("tests/test_contracts.py", "-k", "gflownet_contract and smc"),
    ),
    Mutant(
        "smc-resampling-ignores-weights-contract",
        "resampling that ignores the weights (the contract suite's noisy-twist, base-proposal case)",
        "sculpting/smc_core.py",
        "idx = systematic_resample(self.log_w[which], self.generator)",
        "idx = systematic_resample(torch.zeros_like(self.log_w[which]), self.generator)",
        ("tests/test_contracts.py", "-k", "gflownet_contract and smc"),
    ),
    Mutant(
        "gflownet-smc-terminal-twist-dropped",
        "the terminal potential left out of the GFlowNet SMC weights",
        "sculpting/gflownet/smc.py",
        "new_psi[is_stop] = _log_twist(policy, f.double(), y.double())",
        "new_psi[is_stop] = 0.0 * _log_twist(policy, f.double(), y.double())",
        ("tests/test_smc.py",),
    ),
    Mutant(
        "paper-form-uniform-parent-weights",
        "the paper guidance form mixes the bases' policies with uniform weights, not the first-label posterior",
        "sculpting/gflownet/guidance.py",
        "logits = torch.logsumexp(parent_first[:, :, None] + base_lp, dim=1)",
        "logits = torch.logsumexp(0 * parent_first[:, :, None] + base_lp, dim=1)",
        ("tests/test_contracts.py::test_both_guidance_forms_are_exact_on_exact_gflownets",),
    ),
    Mutant(
        "alpha-swapped-in-the-priors",
        "α and 1 − α swapped in the two-base observation priors (where Composition builds them)",
        "sculpting/algebra.py",
        "priors = priors[:alpha_slot] + ((alpha, 1 - alpha),) + priors[alpha_slot + 1 :]",
        "priors = priors[:alpha_slot] + ((1 - alpha, alpha),) + priors[alpha_slot + 1 :]",
        ("tests/test_contracts.py::test_both_guidance_forms_are_exact_on_exact_gflownets",),
    ),
    Mutant(
        "observation-posterior-ignores-the-prior",
        "the observation posterior p(y = i ∣ x) computed without the prior ω (uniform)",
        "sculpting/algebra.py",
        "    joint = base_log_probs + log_prior.to(base_log_probs.dtype)[:, None]",
        "    joint = base_log_probs + 0 * log_prior.to(base_log_probs.dtype)[:, None]",
        ("tests/test_contracts.py::test_both_guidance_forms_are_exact_on_exact_gflownets",),
    ),
    Mutant(
        "paper-form-path-likelihoods-frozen",
        "the paper form's running path log-likelihoods never updated in SMC (the prior mixes every step)",
        "sculpting/gflownet/smc.py",
        "            self.ell[active] += each[ar, :, a]",
        "            pass",
        ("tests/test_smc.py::test_smc_converges_to_the_terminal_defined_target",),
    ),
    Mutant(
        "rejection-accepts-every-proposal",
        "the rejection sampler's acceptance step accepts every proposal",
        "sculpting/gflownet/acceptance.py",
        "accept = torch.log(u) < log_w[inv].reshape(prop.shape)",
        "accept = torch.log(u) < 0 * log_w[inv].reshape(prop.shape)",
        ("tests/test_contracts.py::test_rejection_where_the_acceptance_step_decides",),
    ),
    Mutant(
        "head-twist-dropped-amortised",
        "the successor-head twist set to zero (amortised proposal: ψ = 1 between the root and the stop)",
        "sculpting/gflownet/smc.py",
        "            new_psi[go] = head_lw[go, a[go]]",
        "            new_psi[go] = 0.0 * head_lw[go, a[go]]",
        ("tests/test_head_twist.py",),
    ),
    Mutant(
        "head-twist-dropped-base",
        "the successor-head twist set to zero (base proposal, the head at the chosen action only)",
        "sculpting/gflownet/smc.py",
        "            new_psi[go] = _head_log_weights(policy, cur[go], one[go])[",
        "            new_psi[go] = 0.0 * _head_log_weights(policy, cur[go], one[go])[",
        ("tests/test_head_twist.py",),
    ),
    Mutant(
        "gflownet-smc-hard-coded-device",
        'a hard-coded device="cpu" in the GFlowNet SMC loop (a GPU bug that no CPU run shows)',
        "sculpting/gflownet/smc.py",
        "new_psi = torch.zeros(len(cur), dtype=torch.float64, device=dev)",
        'new_psi = torch.zeros(len(cur), dtype=torch.float64, device="cpu")',
        ("tests/test_devices.py::test_the_sampling_core_names_no_device_by_a_literal",),
    ),
    Mutant(
        "diffusers-epsilon-read-as-score",
        "a diffusers base's ε-prediction turned into a score without the 1 / σ_t",
        "sculpting/adapters/diffusers.py",
        "            return -eps / std.reshape(-1, *[1] * (x.dim() - 1))",
        "            return -eps",
        ("tests/test_own_models.py::test_smc_over_diffusers_bases_reaches_the_closed_form",),
    ),
    Mutant(
        "paths-increment-dropped",
        "the path composition's SMC drops its increment log Σ_a G(a) (guidance by the path posteriors alone)",
        "sculpting/gflownet/paths.py",
        "return torch.logsumexp(self._log_g, dim=1), active",
        "return 0.0 * torch.logsumexp(self._log_g, dim=1), active",
        ("tests/test_classifier_free.py",),
    ),
    Mutant(
        "paths-posterior-ratio-dropped",
        "G(a) without the 1 / P̄^{(j)}(a) of each observed slot",
        "sculpting/gflownet/paths.py",
        "        out = out + each[:, y] - log_bar",
        "        out = out + each[:, y]",
        ("tests/test_classifier_free.py",),
    ),
    Mutant(
        "paths-likelihoods-frozen",
        "the running path log-likelihoods L_i never updated (ρ stays the prior)",
        "sculpting/gflownet/paths.py",
        "        self.ell[active] += each.gather(",
        "        self.ell[active] += 0 * each.gather(",
        ("tests/test_classifier_free.py",),
    ),
    Mutant(
        "diffusion-paths-increment-dropped",
        "the diffusion path composition's SMC drops its weight increment (guidance by the path posteriors alone)",
        "sculpting/diffusion/paths.py",
        "        return inc, None",
        "        return 0.0 * inc, None",
        ("tests/test_classifier_free.py", "-k", "diffusion"),
    ),
    Mutant(
        "path-weights-ignore-the-prior",
        "the path composition's importance weights log Π/P̄ computed without the slot priors ω",
        "sculpting/algebra.py",
        "gamma * torch.log_softmax(log_w[k] + ell, dim=1)[:, y - 1]",
        "gamma * torch.log_softmax(ell, dim=1)[:, y - 1]",
        ("tests/test_classifier_free.py", "-k", "own_chains"),
    ),
    Mutant(
        "ddpm-kernel-large-variance",
        "the DDPM kernel's variance always β_t (fixed_large) whatever the scheduler says",
        "sculpting/diffusion/paths.py",
        "v = beta if large else",
        "v = beta if True else",
        ("tests/test_classifier_free.py", "-k", "ddpm"),
    ),
    Mutant(
        "ddpm-kernel-unclipped-x0-coefficient",
        "the DDPM kernel's x̂_0 coefficient √ᾱ_t' β_t / (1 − ᾱ_t) without its √ᾱ_t'",
        "sculpting/diffusion/paths.py",
        "c0, cx = math.sqrt(a_p) * beta / (1.0 - a_t),",
        "c0, cx = beta / (1.0 - a_t),",
        ("tests/test_classifier_free.py", "-k", "ddpm"),
    ),
    Mutant(
        "flows-without-z",
        "the flow classifier weighs the bases by F_i(s), not F_i(s) / Z_i",
        "sculpting/gflownet/flows.py",
        "        return flows - self._log_z.to(flows.device)",
        "        return flows",
        ("tests/test_flow_twist.py",),
    ),
    Mutant(
        "flows-terminal-without-stop",
        "the flow classifier's terminal head reads F_i(x) / Z_i (visiting x), not p_i(x) (stopping at x)",
        "sculpting/gflownet/flows.py",
        "first, y = self._split(self._visit(states) + lp)",
        "first, y = self._split(self._visit(states))",
        ("tests/test_flow_twist.py",),
    ),
    Mutant(
        "diffusion-paths-likelihoods-frozen",
        "the diffusion path log-likelihoods never updated (ρ stays the prior)",
        "sculpting/diffusion/paths.py",
        "        self.ell = self.ell - e",
        "        self.ell = self.ell",
        ("tests/test_classifier_free.py", "-k", "diffusion"),
    ),
    Mutant(
        "nan-classifier-accepted",
        "non-finite classifier outputs no longer refused",
        "sculpting/gflownet/classifier.py",
        '        check_log_probs(joint, self.classifier, "log Q(y_1..y_n | s)")\n',
        "",
        ("tests/test_safety.py::test_non_finite_grid_classifier_outputs_are_errors",),
    ),
    Mutant(
        "score-cache-survives-calls",
        "classifier scores cached across calls (same seed, other bytes)",
        "sculpting/compose.py",
        "    forget_cached_scores(model)  # a run depends on its seed alone\n",
        "",
        ("tests/test_safety.py::test_the_same_seed_gives_the_same_bytes_on_every_call",),
    ),
    Mutant(
        "save-overwrites-user-files",
        "saving replaces files sculpting did not write",
        "sculpting/infrastructure/checkpoints.py",
        "            if target.exists() and not written_by_sculpting(target):",
        "            if False:",
        ("tests/test_safety.py::test_save_refuses_a_json_path_and_a_users_files",),
    ),
    Mutant(
        "worker-exit-0-waits-forever",
        "a worker that exits with status 0 and no result is waited for",
        "sculpting/infrastructure/workers.py",
        "ended = [j for j, p in running.items() if p.exitcode is not None]",
        "ended = [j for j, p in running.items() if p.exitcode is not None and p.exitcode != 0]",
        ("tests/test_safety.py::test_a_worker_that_exits_without_a_result_is_an_error",),
        timeout=90,
    ),
    Mutant(
        "memory-estimate-misses-the-network",
        "the memory estimate counts a quarter of the network pass",
        "sculpting/families.py",
        "return 4 * (7 + 2 * len(bases)) * d + net",
        "return 4 * (7 + 2 * len(bases)) * d + net // 4",
        ("tests/test_safety.py::test_the_smc_memory_estimate_bounds_the_measured_peak",),
    ),
    Mutant(
        "recipe-lookup-skipped",
        "a checkpoint's recipe name imported and called instead of looked up",
        "sculpting/adapters/torchgfn.py",
        '        _registered(spec.get("recipe"), path)  # before anything is called: only what this process registered',
        '        import importlib; m, f = spec["recipe"].split(":"); return getattr(importlib.import_module(m), f)('
        '**spec["kwargs"])',
        ("tests/test_safety.py::test_a_forged_torchgfn_recipe_runs_nothing",),
    ),
    Mutant(
        "fast-path-channels-last-kept",
        "sampling with fast= leaves the networks in channels-last",
        "sculpting/diffusion/fast.py",
        "                    m.to(memory_format=torch.contiguous_format)",
        "                    pass",
        ("tests/test_fast_training.py::test_composed_sampling_on_the_fast_path_draws_the_same_images_within_noise",),
    ),
]


def _shown(tests) -> str:
    """The tests column: node names without their paths; a ``-k`` selection as ``file -k "expr"``."""
    if "-k" in tests:
        i = tests.index("-k")
        return f'{" ".join(tests[:i])} -k "{tests[i + 1]}"'
    return ", ".join(t.split("::")[-1] for t in tests)


def _copy(dst: Path) -> None:
    skip = shutil.ignore_patterns(".venv", ".git", "__pycache__", "runs", "*.pyc", ".pytest_cache")
    for name in ("sculpting", "tests", "benchmarks", "scripts", "notebooks", "figures", "docs"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, dst / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dst / name)


def _pytest(where: Path, tests, timeout: float) -> str:
    env = {**os.environ, "PYTHONPATH": str(where), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    try:
        r = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
            cwd=where,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    return "pass" if r.returncode == 0 else "fail"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default="", help="run the entries whose id contains this text")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant (a hang counts as caught)")
    a = p.parse_args(argv)
    chosen = [m for m in MUTANTS if a.only in m.id]
    if not chosen:
        p.error(f"no entry's id contains {a.only!r}; ids: {', '.join(m.id for m in MUTANTS)}")
    rows, t_all = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sculpting-mutants-") as tmp:
        base = Path(tmp) / "repo"
        _copy(base)
        plain = sorted({t for m in chosen if "-k" not in m.tests for t in m.tests})
        selections = [plain] if plain else []
        selections += sorted({m.tests for m in chosen if "-k" in m.tests})  # a -k selection runs alone
        for tests in selections:
            control = _pytest(base, list(tests), a.timeout)
            if control != "pass":
                print(f"the unmutated tests {tests} do not pass ({control}): fix them first", file=sys.stderr)
                return 2
        for m in chosen:
            path = base / m.file
            original = path.read_text()
            if original.count(m.old) != 1:
                rows.append((m, "stale", 0.0))  # the planted text is no longer in the file once
                continue
            path.write_text(original.replace(m.old, m.new))
            t0 = time.perf_counter()
            outcome = _pytest(base, m.tests, m.timeout or a.timeout)
            rows.append(
                (
                    m,
                    {"fail": "caught", "timeout": "caught (hang)", "pass": "SURVIVED"}[outcome],
                    time.perf_counter() - t0,
                )
            )
            path.write_text(original)
    print("| mutant | planted bug | tests | outcome | s |")
    print("|---|---|---|---|---|")
    for m, outcome, s in rows:
        print(f"| {m.id} | {m.what} | {_shown(m.tests)} | {outcome} | {s:.0f} |")
    print(
        f"\n{sum(o.startswith('caught') for _, o, _ in rows)} of {len(rows)} caught in "
        f"{time.perf_counter() - t_all:.0f} s"
    )
    return 0 if all(o.startswith("caught") for _, o, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
