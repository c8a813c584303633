"""Inception score, or classifier score with any classifier's logits (Salimans et al. 2016).

    IS = exp(E_x KL(p(y | x) || p(y))),  p(y) = E_x p(y | x)

computed on each of ``splits`` equal parts of the samples; reported as the mean and std over parts,
as the paper did. It ranges from 1 (every sample gets the same prediction) to the number of classes
(confident predictions spread evenly over the classes).
"""

from __future__ import annotations

import torch
from torch import Tensor


def classifier_score(logits: Tensor, splits: int = 10) -> tuple[float, float]:
    logp = torch.log_softmax(torch.as_tensor(logits).double(), dim=1)
    splits = max(1, min(splits, len(logp)))
    scores = []
    for part in torch.tensor_split(logp, splits):
        log_marginal = torch.logsumexp(part, 0) - torch.log(torch.tensor(float(len(part)), dtype=torch.float64))
        kl = (part.exp() * (part - log_marginal)).sum(1)
        scores.append(kl.mean().exp())
    values = torch.stack(scores)
    return float(values.mean()), float(values.std()) if splits > 1 else 0.0
