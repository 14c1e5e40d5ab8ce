"""A PyTorch + spikingjelly DSQN and its update, the reference the JAX one is timed against.

The network is the paper's (as in the authors' code): Nature-DQN topology on uint8
``[B, 4, 84, 84]`` frames scaled by 1/255; conv1 computed ONCE and its output repeated over the
T steps (direct encoding); multi-step LIF layers (tau 2, V_th 1, hard reset to 0, reset not
detached, ATan surrogate with alpha 2) after conv1, conv2, conv3 and fc1, with conv2, conv3 and
fc1 applied to all T steps at once (time merged into the batch); ``Q = fc2(mean_t S_fc1[t])``.
The LIF layers are spikingjelly's ``LIFNode(step_mode="m")``.

The update mirrors ``dsqn.learning.agent.update``: target forward on s' without gradient, online
forward on s, Huber loss (smooth L1, delta 1) against ``r + gamma (1 - done) max_a' Q_target``, one
Adam step (lr 1e-4). Minibatches are drawn from uint8 tensors of random frames.

Importing this module needs the optional ``torch`` extra (``pip install -e ".[torch]"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, neuron, surrogate
from torch import nn


def lif_layer() -> neuron.LIFNode:
    """A multi-step LIF layer with the paper's settings."""
    return neuron.LIFNode(
        tau=2.0,
        decay_input=True,
        v_threshold=1.0,
        v_reset=0.0,
        surrogate_function=surrogate.ATan(alpha=2.0),
        detach_reset=False,
        step_mode="m",
    )


class TorchDSQN(nn.Module):
    """The DSQN in PyTorch: ``obs uint8 [B, 4, 84, 84] -> Q float32 [B, A]``."""

    def __init__(self, num_actions: int, time_steps: int = 64) -> None:
        super().__init__()
        self.time_steps = time_steps
        self.conv1 = nn.Conv2d(4, 32, 8, stride=4)
        self.conv2 = nn.Conv2d(32, 64, 4, stride=2)
        self.conv3 = nn.Conv2d(64, 64, 3, stride=1)
        self.fc1 = nn.Linear(3136, 512)
        self.fc2 = nn.Linear(512, num_actions)
        self.lif1, self.lif2, self.lif3, self.lif4 = (lif_layer() for _ in range(4))

    @staticmethod
    def _over_time(layer: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
        """``[T, B, ...] -> [T, B, ...]`` with ``layer`` applied to the merged ``T*B`` batch."""
        t, b = x_seq.shape[:2]
        y = layer(x_seq.flatten(0, 1))
        return y.reshape(t, b, *y.shape[1:])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # Each call is an independent simulation: membranes start at V_reset.
        functional.reset_net(self)
        x = self.conv1(obs.float() / 255.0)
        s = self.lif1(x.unsqueeze(0).expand(self.time_steps, *x.shape))
        s = self.lif2(self._over_time(self.conv2, s))
        s = self.lif3(self._over_time(self.conv3, s))
        s = self.lif4(self._over_time(self.fc1, s.flatten(2)))
        return self.fc2(s.mean(0))


class TorchUpdate:
    """One DQN update of a :class:`TorchDSQN` (online, target, Adam) on random-frame batches."""

    def __init__(
        self,
        num_actions: int = 6,
        time_steps: int = 64,
        batch: int = 32,
        replay_size: int = 256,
        seed: int = 0,
    ) -> None:
        torch.manual_seed(seed)
        self.online = TorchDSQN(num_actions, time_steps)
        self.target = TorchDSQN(num_actions, time_steps)
        self.target.load_state_dict(self.online.state_dict())
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=1e-4)
        self.batch = batch
        self.gamma = 0.99
        g = torch.Generator().manual_seed(seed)
        self.frames = torch.randint(0, 256, (replay_size + 1, 4, 84, 84), generator=g).to(
            torch.uint8
        )
        self.actions = torch.randint(0, num_actions, (replay_size,), generator=g)
        self.rewards = torch.randn(replay_size, generator=g)
        self.done = torch.zeros(replay_size)

    def __call__(self) -> float:
        """Samples a minibatch and does one Adam step; returns the loss."""
        idx = torch.randint(0, self.actions.shape[0], (self.batch,))
        obs, next_obs = self.frames[idx], self.frames[idx + 1]
        with torch.no_grad():
            q_next = self.target(next_obs).max(-1).values
            y = self.rewards[idx] + self.gamma * (1 - self.done[idx]) * q_next
        q = self.online(obs).gather(1, self.actions[idx, None]).squeeze(1)
        loss = F.smooth_l1_loss(q, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


class TorchGreedy:
    """Greedy actions of a :class:`TorchDSQN` on a fixed batch of random frames."""

    def __init__(self, batch: int, num_actions: int = 6, time_steps: int = 64, seed: int = 0):
        torch.manual_seed(seed)
        self.network = TorchDSQN(num_actions, time_steps)
        self.obs = torch.randint(0, 256, (batch, 4, 84, 84)).to(torch.uint8)

    def __call__(self) -> torch.Tensor:
        with torch.no_grad():
            return self.network(self.obs).argmax(-1)
