"""After the fit: residual and influence measures as numbers (:mod:`.influence`), the reference curves
of the plots (:mod:`.smoothers`), the drawing helpers (:mod:`.drawing`) and the plots (:mod:`.plots`)."""
