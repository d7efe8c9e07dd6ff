"""Import every module that registers a component, so the registries are complete."""

from __future__ import annotations

import lifelong.backbones.gelu
import lifelong.backbones.mlp
import lifelong.backbones.mobilenet
import lifelong.backbones.resnet
import lifelong.backbones.resnet9
import lifelong.backbones.sparse
import lifelong.backbones.vit
import lifelong.buffers.hybrid_buffer
import lifelong.data.catalog
import lifelong.methods.ar1_star
import lifelong.methods.bir
import lifelong.methods.bir_si
import lifelong.methods.cssl
import lifelong.methods.cwr_star
import lifelong.methods.der
import lifelong.methods.derpp
import lifelong.methods.er
import lifelong.methods.finetune
import lifelong.methods.gr
import lifelong.methods.joint
import lifelong.methods.sarl
import lifelong.methods.sarl_enhanced
import lifelong.methods.sarl_enhanced_gelu
import lifelong.methods.sarl_enhanced_gelu_balanced
import lifelong.methods.sarl_online
import lifelong.methods.si
import lifelong.ssl.barlow_twins
import lifelong.ssl.byol
import lifelong.ssl.emp_ssl
import lifelong.ssl.mae
import lifelong.ssl.simsiam
import lifelong.ssl.strategies.aep
import lifelong.ssl.strategies.apre
import lifelong.ssl.strategies.arp
import lifelong.ssl.strategies.cassle
import lifelong.ssl.strategies.er
import lifelong.ssl.strategies.lump
import lifelong.ssl.strategies.minred
import lifelong.ssl.strategies.none  # noqa: F401
