"""The zero-cost proxies' old home, kept for imports: they now live in ``estimators.zero_cost``
(one family per module) and ``estimators.analytic`` (params, macs)."""
from .analytic import Macs, Params  # noqa: F401
from .zero_cost import _with_split, draw_batch, estimate_many, jacov_score, loss_gradient_pass  # noqa: F401
from .zero_cost.common import _BatchProxy, _Proxy  # noqa: F401
from .zero_cost.jacobian import NASWOT, JaCov  # noqa: F401
from .zero_cost.ntk import NTKCond  # noqa: F401
from .zero_cost.saliency import Fisher, Grasp, GradNorm, Snip, SynFlow  # noqa: F401
from .zero_cost.zen import Zen  # noqa: F401
from .zero_cost.zico import ZiCo  # noqa: F401
