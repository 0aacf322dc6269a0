"""Reference MACs/params from Once-for-All's own code (see tests/data/ofa_reference.README.md)."""
import json, random, sys, types

# torch 2.x removed torch._six; OFA's (unused) data loader imports string_classes from it.
six = types.ModuleType("torch._six"); six.string_classes = (str, bytes); sys.modules["torch._six"] = six

import torch
import torch.nn as nn
import ofa
from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3
from ofa.utils import count_net_flops, count_parameters

torch.set_num_threads(1)
KS, E, D = [3, 5, 7], [3, 4, 6], [2, 3, 4]
RES = list(range(128, 225, 4))
SEED = 2024


def exact_macs(net, r):
    """Integer MACs: same formulas as OFA's count_convNd / count_linear, in Python ints."""
    total = [0]

    def conv_hook(m, _, y):
        kh, kw = m.weight.shape[2], m.weight.shape[3]
        total[0] += y.numel() * (m.in_channels // m.groups) * kh * kw

    def lin_hook(m, _, __):
        total[0] += m.in_features * m.out_features

    hs = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            hs.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hs.append(m.register_forward_hook(lin_hook))
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 3, r, r))
    for h in hs:
        h.remove()
    return total[0]


def configs(rng):
    out = []
    for r in (128, 160, 192, 224):
        out.append({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": r})
        out.append({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": r})
    for _ in range(12):
        out.append({"ks": [rng.choice(KS) for _ in range(20)], "e": [rng.choice(E) for _ in range(20)],
                    "d": [rng.choice(D) for _ in range(5)], "r": rng.choice(RES)})
    return out


rows = []
for w in (1.0, 1.2):
    rng = random.Random(SEED if w == 1.0 else SEED + 1)
    net = OFAMobileNetV3(n_classes=1000, dropout_rate=0, width_mult=w,
                         ks_list=KS, expand_ratio_list=E, depth_list=D)
    for c in configs(rng):
        net.set_active_subnet(ks=c["ks"], e=c["e"], d=c["d"])
        sub = net.get_active_subnet(preserve_weight=True)
        r = c["r"]
        f = count_net_flops(sub, (1, 3, r, r))
        f = int(f) if float(f).is_integer() else f
        row = {"width_mult": w, "ofa": c, "macs_exact": exact_macs(sub, r),
               "macs_ofa_counter": f, "params": int(count_parameters(sub))}
        rows.append(row)
        print(w, r, c["d"], row["macs_exact"], row["macs_ofa_counter"], row["params"], flush=True)

with open(sys.argv[1], "w") as fh:
    fh.write("[\n" + ",\n".join(json.dumps(x) for x in rows) + "\n]\n")
print("ofa", getattr(ofa, "__version__", "?"), "torch", torch.__version__)
