"""The two model families at the size the export and channel-block tests share."""

from keras_gcnprune import models

FAMILIES = {
    "attention_gcn": lambda: models.build("attention_gcn", "sbu_pair", num_classes=8, frames=16),
    "stgcn": lambda: models.build("stgcn", "sbu_pair", num_classes=8, frames=16,
                                  widths=(16, 16, 32), strides=(1, 2, 1)),
}
