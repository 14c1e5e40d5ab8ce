"""``dsqn.networks``: the public name of :mod:`dsqn.models.networks` (the same module object).

Code written before the package had subpackages imports the Q-networks from here; both names
give one module, so that ``dsqn.networks.DSQN is dsqn.models.networks.DSQN``.
"""

import sys

from dsqn.models import networks as _networks

sys.modules[__name__] = _networks
