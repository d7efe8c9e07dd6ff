"""Knowledge distillation from a previous model: softened softmax and sigmoid (multi-label)."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812


def soft_target_distillation(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """LwF's distillation term (Li & Hoiem, TPAMI 2017, Eq. 2; Hinton et al., 2015).

    ``−(1/B) Σ_b Σ_k q_b,k log p_b,k`` with ``q = softmax(z_teacher / T)`` and
    ``p = softmax(z_student / T)``: the cross-entropy of the softened student outputs against
    the softened teacher outputs. It differs from KL(q ‖ p) by the teacher's entropy, a
    constant, so the gradients are the same. Li & Hoiem write ``q`` as ``y^(1/T) / Σ y^(1/T)``
    with ``y`` the teacher's softmax probabilities, which is ``softmax(z / T)``. No ``T²``
    factor (neither LwF nor the DER paper's mammoth code scale by it).

    Args:
        student_logits: Current logits over the distilled classes, shape (B, K).
        teacher_logits: The previous model's logits over the same classes, shape (B, K).
        temperature: T > 0; T > 1 softens both distributions.

    Returns:
        Scalar loss.
    """
    targets = F.softmax(teacher_logits / temperature, dim=1)
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    return -(targets * log_student).sum(dim=1).mean()


def multiclass_distillation_targets(
    labels: torch.Tensor, teacher_logits: torch.Tensor, old_classes: torch.Tensor
) -> torch.Tensor:
    """LwF.MC's targets (Rebuffi et al., iCaRL, CVPR 2017, Alg. 3 and §2.4).

    For old classes the previous model's sigmoid outputs ``σ(z_teacher)``; for the others the
    one-hot code of the label (1 for the true class, 0 elsewhere).

    Args:
        labels: Integer labels, shape (B,).
        teacher_logits: The previous model's logits, shape (B, K).
        old_classes: Which of the K classes were learnt before, bool shape (K,).

    Returns:
        Targets in [0, 1], shape (B, K).
    """
    one_hot = F.one_hot(labels, teacher_logits.shape[1]).to(teacher_logits.dtype)
    return torch.where(old_classes, torch.sigmoid(teacher_logits), one_hot)


def sigmoid_distillation_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """LwF.MC's / iCaRL's binary cross-entropy on every output (Rebuffi et al., CVPR 2017, Alg. 3).

    ``−(1/B) Σ_b Σ_k [t_b,k log σ(z_b,k) + (1 − t_b,k) log(1 − σ(z_b,k))]``: summed over the K
    classes as in the iCaRL paper, averaged over the batch. (The DER paper's mammoth code
    averages over the B × K elements, which divides the loss and its gradient by K.)

    Args:
        logits: Current logits over the trained classes, shape (B, K).
        targets: Targets in [0, 1], shape (B, K) (see :func:`multiclass_distillation_targets`).

    Returns:
        Scalar loss.
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return bce.sum(dim=1).mean()
