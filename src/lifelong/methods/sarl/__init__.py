"""SARL and its variants: the algorithm in :mod:`.method`, its settings in :mod:`.config`.

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
