"""Training: post-training the action-conditioned predictor (V-JEPA 2-AC) and pretraining a small encoder (V-JEPA).

- :func:`train_predictor.train_predictor` / ``jepa-mpc train``: frozen encoder, cached features,
  teacher-forcing + rollout L1, DDP, bit-exact ``--resume``.
- :func:`pretrain_encoder.pretrain_encoder` / ``jepa-mpc pretrain``: multi-block masking, context
  encoder, narrow predictor with mask tokens, EMA target encoder.

Submodules are imported where used, so that ``import worldmodel`` stays light.
"""
