"""The improved cross-entropy method (iCEM) of Pinneri et al. 2020, "Sample-efficient cross-entropy
method for real-time planning" (CoRL 2020, arXiv 2008.06389, Algorithm 1), over action sequences.

What it changes against :func:`planner.cem.plan_cem` (the rest is shared: sampling, scoring and the
NaN policy of :mod:`planner.population`, CEM's elite update with momentum, the final choice):

- **coloured noise**: the samples' deviations along the horizon have a power spectral density
  ``~ 1/f^beta`` (``icem_beta``; 0 = white, 2 = Brownian-like), so consecutive steps are correlated
  (paper, section 3.1). With H = 2 (our default) the only two frequencies get the same weight and the
  noise is white: the exponent matters from H = 3 on;
- **a shrinking population**: iteration ``i`` draws ``max(samples * gamma^-i, 2 * topk)`` sequences
  (``icem_population_decay`` = gamma, paper: 1.25), so the later, narrower iterations cost less;
- **elites kept**: a fraction ``icem_keep_fraction`` (xi, paper: 0.3) of the previous iteration's
  elites joins the pool (their energies are known, they are not rolled out again), and at the first
  iteration the same fraction of the previous *planning step's* elites, shifted one step
  (``init_elites``, :class:`planner.mpc.GoalImageMPC` passes them);
- **the mean as a sample only in the last iteration** (paper, "add mean at the last iteration");
- the executed plan is the best sequence seen or the final mean, whichever scores lower (the paper
  executes the best; the mean is kept as a candidate, as our CEM does).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from jepa_mpc_foundation.pose import ACTION_DIM
from planner.cem import elite_update
from planner.config import PlannerConfig
from planner.interface import Objective, RolloutFn
from planner.limits import ActionLimits
from planner.optimizer import PlanResult, initial_distribution, start_mean
from planner.population import SearchRecord, sample_and_score


def colored_noise(
    beta: float,
    shape: tuple[int, int, int],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Gaussian noise ``[S, H, D]`` (``shape``), unit variance, with power spectral density ``~ 1/f^beta``
    along the horizon H (dimension 1), independent across samples S and action dimensions D.

    Timmer and Koenig's method (1995), as iCEM draws it (the ``colorednoise`` package): random Fourier
    coefficients scaled by ``f^(-beta/2)`` (the lowest frequency clamped to ``1/H``), inverse real FFT,
    divided by the exact std of the result. ``beta = 0`` or ``H = 1`` give white noise.
    """
    samples, horizon, dims = shape
    if beta == 0.0 or horizon == 1:
        return torch.randn(shape, generator=generator, device=device)
    freqs = torch.fft.rfftfreq(horizon, device=device).clamp_min(1.0 / horizon)  # [F]
    scale = freqs ** (-beta / 2.0)  # [F]
    real = torch.randn((samples, dims, freqs.numel()), generator=generator, device=device) * scale
    imag = torch.randn((samples, dims, freqs.numel()), generator=generator, device=device) * scale
    imag[..., 0] = 0.0  # the DC coefficient is real...
    real[..., 0] *= math.sqrt(2.0)
    # Variance of each output sample: (2 s_0^2 + 4 sum_{0<k<H/2} s_k^2 + 2 s_{H/2}^2 [even H]) / H^2.
    # (The colorednoise package leaves the DC term out of its sigma; counted here, the output std is 1.)
    terms = 4.0 * scale**2
    terms[0] = 2.0 * scale[0] ** 2
    if horizon % 2 == 0:  # ... and so is the Nyquist one for even H
        imag[..., -1] = 0.0
        real[..., -1] *= math.sqrt(2.0)
        terms[-1] = 2.0 * scale[-1] ** 2
    sigma = math.sqrt(float(terms.sum())) / horizon
    noise = torch.fft.irfft(torch.complex(real, imag), n=horizon) / sigma  # [S, D, H]
    return noise.transpose(1, 2).contiguous()  # [S, H, D]


def population_sizes(config: PlannerConfig) -> list[int]:
    """Sequences drawn at each iteration: ``max(samples * gamma^-i, 2 * topk)``, never above ``samples``."""
    return [
        min(config.samples, max(int(config.samples * config.icem_population_decay**-i), 2 * config.topk))
        for i in range(config.iterations)
    ]


@torch.no_grad()
def plan_icem(
    rollout: RolloutFn,
    objective: Objective,
    config: PlannerConfig,
    *,
    device: torch.device | str = "cpu",
    init_mean: Tensor | None = None,
    init_elites: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Optimise an action sequence ``[H, 7]`` with iCEM (the :class:`planner.optimizer.Optimizer` signature).

    ``init_elites``: ``[K', H, 7]`` the previous planning step's elites, already shifted one step
    (best first); the first ``round(icem_keep_fraction * topk)`` of them join the first iteration's draw.
    Rollouts per call: ``sum(population_sizes(config))`` plus the kept previous elites, plus 2 for the
    final choice.

    Raises:
        ValueError: ``init_mean`` or ``init_elites`` has the wrong shape, or the objective does not
            return ``[S]``.
        NonFiniteEnergyError: no finite energy at all, or the plan's energy is not finite.
    """
    device = torch.device(device)
    limits = ActionLimits(config, device)
    _, std = initial_distribution(config, limits)
    mean = start_mean(config, limits, init_mean)
    h, k, iterations = config.horizon, config.topk, config.iterations
    keep = round(config.icem_keep_fraction * k)
    carried = torch.empty(0, h, ACTION_DIM, device=device)  # [<= keep, H, 7] to roll out (previous step's)
    if init_elites is not None and keep > 0:
        if init_elites.dim() != 3 or init_elites.shape[1:] != (h, ACTION_DIM):
            raise ValueError(f"init_elites must be [K, horizon={h}, {ACTION_DIM}], got {tuple(init_elites.shape)}")
        carried = limits.apply(init_elites[:keep].to(device, torch.float32))

    search = SearchRecord(config, device)
    # The best sequence ever evaluated [H, 7] and its energy (the paper's plan), kept apart from the elites:
    # only `keep` elites rejoin the pool (none when icem_keep_fraction * topk < 0.5).
    best_action = mean.clone()
    best_energy = torch.full((), float("inf"), device=device)
    for it, population_size in enumerate(population_sizes(config)):
        noise = colored_noise(config.icem_beta, (population_size, h, ACTION_DIM), generator, device)
        population = sample_and_score(
            rollout,
            objective,
            limits,
            mean,
            std,
            noise,
            mean_as_sample=it == iterations - 1,  # the mean joins the last iteration only
            extra=carried if it == 0 else None,
        )
        # A fraction xi of the previous iteration's elites joins the pool, with known energies.
        search.select_elites(population, carry=keep)
        better = search.elite_energies[0] < best_energy
        best_action = torch.where(better, search.elite_actions[0], best_action)
        best_energy = torch.where(better, search.elite_energies[0], best_energy)
        mean, std = elite_update(mean, std, search.elite_actions, search.elite_energies, config, limits)
        search.record(it, population, best_energy)

    return search.finish(rollout, objective, config, limits, torch.stack([mean, best_action]), mean=mean, std=std)
