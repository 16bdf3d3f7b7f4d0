"""StyleGAN2 training: the teacher method and the distillers of its compression papers.

- ``stylegan2`` (:mod:`.teacher`): train a StyleGAN2 teacher on an unconditional image folder
  (non-saturating loss, lazy R1, G_ema, w_avg for truncation); the discriminator is saved beside it.
- Distillers of a StyleGAN2 teacher into a uniformly pruned student, all sharing StyleGAN2's
  adversarial training (:mod:`.student`): ``kd`` (CAGAN-style, :mod:`.kd`), ``itgc`` (:mod:`.itgc`),
  ``dime`` (:mod:`.dime`), ``nickel`` and ``nickel-dime`` (:mod:`.nickel`).
- Their losses: :mod:`.gan_loss` (logistic loss, R1, path length), :mod:`.mmd`, :mod:`.encoders`,
  :mod:`.haar`, :mod:`.ebm`; :mod:`.teacher_stats` accumulates DiME's teacher statistics.

The methods register themselves in :data:`pocketgan.distill.base.DISTILLERS` when their module is
imported (the registry imports them lazily); importing this package imports nothing heavy.
"""
