"""Training on the compiled backend: every procedure learns, weight changes are the
rule's batched form (equal to the sum of its local form), locality is still enforced."""

import numpy as np
import pytest

from neurosim.compiled import compile, sigmoid
from neurosim.data import encoder_424
from neurosim.errors import LocalityError, NeurosimError
from neurosim.inference import kl_data_model
from neurosim.learning import Rule, SynapseView, get_rule
from neurosim.learning.audit import ALGORITHMS, _output_error
from neurosim.learning.learners import CompiledLearner
from neurosim.learning.procedures import Settings, train as train_any

DATA = encoder_424()


def train(*args, **kwargs):
    return train_any(*args, backend="compiled", **kwargs)


def quality(name, net):
    if name == "backprop":
        return _output_error(net, DATA.data)
    return kl_data_model(net, DATA.names, DATA.data, DATA.probs)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_procedure_learns_on_the_compiled_backend(name):
    """The audit's task and settings: quality improves by a clear margin.
    Before training KL is 4.1 nats (backprop: a quarter of the outputs wrong)."""
    rule_name, build, settings, _ = ALGORITHMS[name]
    rng = np.random.default_rng(1)
    net = build(rng)
    result = train(net, get_rule(rule_name), DATA.data, DATA.names, rng, settings)
    before, after = quality(name, net), quality(name, result.network)
    assert after < 0.6 * before, (before, after)
    assert result.violations == 0 and result.cases == len(DATA.data) * settings.epochs
    assert result.symmetry_drift == 0


@pytest.mark.parametrize("rule_name, phase, extra", [
    ("cd", "positive", {}), ("cd", "negative", {}), ("delta", "wake", {}),
    ("wake-sleep", "sleep", {}), ("backprop", "backward", {"post_error": True})])
def test_compiled_change_is_the_mean_of_local_changes(rule_name, phase, extra):
    """The batched change the compiled backend applies equals, synapse by synapse, the
    mean over the minibatch of the rule's local form on the same states (post_prob: eq. 1
    from the weights, as the event engine's synapses read it)."""
    rng = np.random.default_rng(0)
    net = ALGORITHMS["cd"][1](rng)
    rule = get_rule(rule_name)
    learner = CompiledLearner(net, rule, Settings(lr=0.3), rng, ("generative",))
    cn = learner.cns["generative"]
    S = (rng.random((5, cn.n)) < 0.5).astype(np.float32)
    error = rng.random((5, cn.n)).astype(np.float32) if extra else None
    prob = sigmoid(cn.b + S @ cn.W)
    dW, db = learner.change(cn, S, phase, post_error=error)
    for i, j in list(zip(*np.nonzero(cn.incoming))) + [(None, j) for j in range(cn.n)]:
        local = np.mean([rule.local(SynapseView("s", set(), pre=1.0 if i is None else S[r, i], post=S[r, j],
                                                phase=phase, lr=0.3, post_prob=prob[r, j],
                                                post_error=None if error is None else error[r, j]))
                         for r in range(5)])
        assert (db[j] if i is None else dW[i, j]) == pytest.approx(local, abs=1e-6)


class Peeking(Rule):
    name, phases, procedure = "peeking", ("positive", "negative"), "cd"

    def local(self, s):
        return s.lr * s.pre * s.post * s.other_units_state

    def batched(self, pre, post, phase, lr, post_prob=None, post_error=None):
        return lr * (pre.T @ post)


class LocalOnly(Peeking):
    name = "local-only"

    def local(self, s):
        return s.lr * s.pre * s.post

    def batched(self, pre, post, phase, lr, post_prob=None, post_error=None):
        raise NotImplementedError


def test_a_non_local_rule_fails_loudly_on_the_compiled_backend():
    rng = np.random.default_rng(0)
    with pytest.raises(LocalityError, match="other_units_state"):
        train(ALGORITHMS["cd"][1](rng), Peeking(), DATA.data, DATA.names, rng)


def test_a_rule_without_a_batched_form_says_use_the_event_engine():
    rng = np.random.default_rng(0)
    with pytest.raises(NeurosimError, match="--backend event"):
        train(ALGORITHMS["cd"][1](rng), LocalOnly(), DATA.data, DATA.names, rng)


def test_wake_sleep_writes_back_both_pathways():
    rng = np.random.default_rng(0)
    net = ALGORITHMS["wake-sleep"][1](rng)
    trained = train(net, get_rule("wake-sleep"), DATA.data, DATA.names, rng, Settings(epochs=20, lr=0.5)).network
    changed = [abs(trained.weight(v, h, recognition=True) - net.weight(v, h, recognition=True)) > 1e-3
               for v, h in net.recognition.edges()]
    assert all(changed)
    assert trained.unit("h0").recognition_bias != net.unit("h0").recognition_bias
    assert trained.unit("a0").recognition_bias == net.unit("a0").recognition_bias == 0.0  # no synapse arrives


def test_same_seed_same_weights():
    nets = [train(ALGORITHMS["cd"][1](np.random.default_rng(0)), get_rule("cd"), DATA.data, DATA.names,
                  np.random.default_rng(5), Settings(epochs=5, batch=2)).network for _ in range(2)]
    assert nets[0] == nets[1]


def test_compiled_weights_stay_on_existing_synapses():
    rng = np.random.default_rng(0)
    cn = compile(ALGORITHMS["cd"][1](rng))
    cn.set_weights(np.ones((cn.n, cn.n)))
    assert np.array_equal(cn.W != 0, cn.incoming)
