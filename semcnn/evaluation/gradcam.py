"""Grad-CAM (Selvaraju et al., ICCV 2017): where in a crop the evidence for a class lies."""
import torch
import torch.nn.functional as F

from semcnn.files.errors import fail


class GradCAM:
    """cam(x, target=None) -> (maps N x H x W in [0, 1], class probabilities N x K)."""

    def __init__(self, model, input_size, layer_name=None):
        self.model = model
        p = next(model.parameters())
        example = torch.zeros(1, 3, input_size, input_size, device=p.device, dtype=p.dtype)
        self.layer_name = layer_name or last_spatial_layer(model, example)
        modules = dict(model.named_modules())
        if self.layer_name not in modules:
            fail(f'--layer {self.layer_name}: no such module; spatial layers are '
                 f"{', '.join(spatial_layers(model, example))}")
        self.layer = modules[self.layer_name]

    def __call__(self, x, target=None):
        saved = {}

        def keep(module, inputs, output):
            # A copy: a later in-place op (ReLU(inplace), +=) must not change what was seen.
            saved['activation'] = output.detach().clone()
            # Backward runs in reverse: for a module called twice, the first gradient to arrive
            # belongs to the last call, whose activation is the one kept.
            output.register_hook(lambda grad: saved.setdefault('gradient', grad))

        handle = self.layer.register_forward_hook(keep)
        try:
            self.model.eval()
            with torch.enable_grad():
                logits = self.model(x)
                target = logits.argmax(1) if target is None else target
                self.model.zero_grad(set_to_none=True)
                logits.gather(1, target.view(-1, 1)).sum().backward()
        finally:
            handle.remove()
        self.model.zero_grad(set_to_none=True)
        activation, gradient = saved['activation'].detach(), saved['gradient']
        weights = gradient.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * activation).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode='bilinear', align_corners=False)[:, 0]
        cam = cam / cam.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
        # the probabilities at the trained run's temperature, as test.py and predict.py give them
        temperature = getattr(self.model, 'temperature', 1.0)
        return cam.clamp(0, 1), (logits.detach() / temperature).softmax(1)


def spatial_layers(model, x):
    """Names of the modules whose output is an N x C x H x W map with H, W > 1, in the order
    their forward passes finish."""
    names, handles = [], []
    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(
                lambda m, i, out, name=name: names.append(name)
                if torch.is_tensor(out) and out.ndim == 4 and min(out.shape[-2:]) > 1 else None))
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return list(dict.fromkeys(names))


def last_spatial_layer(model, x):
    names = spatial_layers(model, x)
    if not names:
        fail(f'the model has no layer with a spatial output at input size {x.shape[-1]}; '
             'Grad-CAM needs one')
    return names[-1]
