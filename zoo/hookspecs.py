"""The hooks a plugin may implement, and the marker it implements them with.

A plugin is a module with functions decorated ``@zoo.hookimpl`` whose names match
the specs below. Each hook receives a ``register`` callback; call it once per thing
you contribute. Specs are docstring-only on purpose: this file is the contract.
"""

import pluggy

PROJECT = "mnist_zoo"
API_VERSION = 1

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def zoo_register_architectures(register):
    """Register architectures: call ``register(Architecture(...))`` for each one."""


@hookspec
def zoo_register_datasets(register):
    """Register datasets: call ``register(Dataset(...))`` for each one."""


@hookspec
def zoo_register_experiments(register):
    """Register experiments: call ``register(Experiment(...))`` for each question a class can
    answer by changing one knob (``zoo experiments`` lists them, ``zoo experiment NAME`` runs one)."""
