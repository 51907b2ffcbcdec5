"""``python -m stackcheck_provisioners.local --state-dir DIR --host hN ACTION [SERVICE]``: service
control.

The inventory's service-control templates call this inside a host (over SSH). It lives
here rather than in ``control`` so ``-m`` does not re-import a module the package imports.
"""

import sys

from stackcheck_provisioners.local.control import main

sys.exit(main())
