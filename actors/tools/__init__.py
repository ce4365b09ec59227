"""Operator tools: watch and steer a running gateway (monitor, ctl, status, metrics, deploy, demo).

Room rule: may import every room below (gateway, shell, store, fix) and
``broker.protocol``; nothing imports it but ``actors.cli``.
"""
