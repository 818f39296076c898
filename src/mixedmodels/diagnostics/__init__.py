"""After the fit: residual and influence measures as numbers (:mod:`.influence`) and the plots drawn
from them (:mod:`.plots`)."""
