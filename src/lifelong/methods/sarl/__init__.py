"""SARL and its variants: the algorithm in :mod:`.method`, its settings in :mod:`.config`.

Variants, as options of one algorithm. ``similarity="learned"`` (``sarl_enhanced``, spec §2.1;
on GELU backbones ``sarl_enhanced_gelu``, §2.2): the hard groups become soft weights
``w_cr = S(running_c, p_r)`` of a network ``S``
(:func:`~lifelong.nn.semantic_similarity.soft_semantic_weights`), and each step in which the
semantic term is active ``S`` takes one Adam step (``sim_lr``) on binary cross-entropy over up
to ``sim_pairs`` pairs of learned-class prototypes, with target 1 when their cosine exceeds
``sim_thresh`` (and for a class with itself). ``use_balanced_sampling``
(``sarl_enhanced_gelu_balanced``, §2.3): the buffer also stores each item's normalised feature
and the replay minibatch is drawn without replacement by
:func:`~lifelong.nn.semantic_similarity.replay_importance`. ``online`` (``sarl_online``, §1.8):
the first ``warmup_iters`` steps of each experience are warm-up; after them every step adds the
batch's normalised features to per-class running sums, the first such step of a later
experience groups the new classes seen so far, and the distillation and semantic terms act from
that step on; prototypes are the running means (no pass over the data) and the learning rate is
constant. MNIST-360 is one experience, so there the online form trains as DER plus a
cross-entropy on the same replayed examples.

Differences from the reference code: prototype and grouping passes run under no-grad; the
running prototype sums restart each experience (the reference never resets them, which
biases recurring classes); a batch class without a group is simply not attracted. SARL_Optim's
``S`` never trains: its collection of learned prototypes tests whether a class id occurs as a
*value* in the prototype tensor, so it finds at most one prototype and returns early, and its
targets (cos > 0.5 → 1, cos < -0.5 → 0) would have no negatives on non-negative k-WTA
features; we label pairs by SARL's own rule (``sim_thresh``). Its balanced sampler is
effectively uniform: the stored features sit in the buffer's last slots instead of the
reservoir slots, the validity test compares slot indices with label *values* (always
failing), group counts only grow, and ``balance_alpha``/``adaptive_temp`` exist only in its
README; here the features follow the reservoir slots, groups are counted over the current
buffer and both settings act (our definitions). The online reference was not available
(reconstructed from the spec): a class's prototype is set only if it was seen after the
warm-up, and if no new class has been seen at the first post-warm-up step, grouping waits for
the first step that has one.
"""

from lifelong.methods.sarl.config import SARLConfig
from lifelong.methods.sarl.method import SARL
from lifelong.methods.sarl.variants import GELU_BACKBONES

__all__ = ["GELU_BACKBONES", "SARL", "SARLConfig"]
