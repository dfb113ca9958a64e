"""``hikd doctor``: why a device sends no events, checked from hikd's side and the device's.

One report per configured device (`hikd.doctor.run.examine`): checks that are ``ok``,
``warning`` or ``problem``, each with what to change and where in the device's web UI, and
the changes ``--fix`` would make (or made).
"""
