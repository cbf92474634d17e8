"""One training update and one forward of BERT vs ModernBERT of the same width/depth on this CPU (BERT steps
faster; ModernBERT, the default, learns faster per update: smkit/models/backbones.py says why it wins).
Usage: python benchmarks/backbones.py"""
from __future__ import annotations

import torch

from common import invocation, median_time
from smkit.models.backbones import BackboneConfig, build_from_hf_config, hf_config


def main():
    V, L, B = 1024, 128, 32
    x = torch.randint(0, V, (B, L), generator=torch.Generator().manual_seed(0))
    for kind in ("bert", "modernbert"):
        torch.manual_seed(0)
        m = build_from_hf_config(hf_config(BackboneConfig(kind=kind), V, L).to_dict())
        emb = m.get_input_embeddings()
        opt = torch.optim.AdamW(m.parameters(), 1e-4)

        def update():
            loss = m(inputs_embeds=emb(x)).logits.float().logsumexp(-1).mean()
            loss.backward()
            opt.step()
            opt.zero_grad()

        def forward():
            with torch.no_grad():
                m(inputs_embeds=emb(x))

        tu, tf = median_time(update, 5), median_time(forward, 5)
        n = sum(p.numel() for p in m.parameters())
        print(f"{kind:10s} params {n / 1e6:.2f}M  update {tu * 1e3:.0f} ms ({B * L / tu:.0f} tokens/s)  "
              f"forward {tf * 1e3:.0f} ms")
    print(f"command: {invocation()}")


if __name__ == "__main__":
    main()
