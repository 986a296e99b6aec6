"""The values a config may choose, which config.py checks before any work starts without
importing torch: input treatments, heads, session augmentation keys and model names (a
torchvision or timm name is looked up in that library, seconds to import, only when one is
given)."""
from semcnn.files.errors import fail

INTENSITY_TREATMENTS = ('none', 'equalize', 'standardize')
HEADS = ('flat', 'factored')
# the amounts of SessionAugment (semcnn/data/augment.py), each a config key
SESSION_KEYS = ('gamma', 'blur', 'illumination', 'noise', 'sharpen', 'scale')

# Networks of this project (semcnn/training/model.py builds them), without ImageNet weights.
LOCAL_MODELS = ('semnet', 'semnet_s4')
TIMM_PREFIX = 'timm:'   # model=timm:<name>: timm's network of that name
# Where each torchvision family keeps its head (the Linear layer that gives the class scores,
# whose input is the pooled features): a family not listed here is refused. One entry per family.
TORCHVISION_HEADS = {'resnet': 'fc', 'resnext': 'fc', 'wide_resnet': 'fc', 'regnet': 'fc',
                     'googlenet': 'fc', 'inception_v3': 'fc', 'shufflenet': 'fc',
                     'alexnet': 'classifier.6', 'vgg': 'classifier.6',
                     'efficientnet': 'classifier.1', 'mobilenet_v2': 'classifier.1',
                     'mobilenet_v3': 'classifier.3', 'mnasnet': 'classifier.1',
                     'convnext': 'classifier.2', 'densenet': 'classifier', 'vit': 'heads.head',
                     'swin': 'head', 'maxvit': 'classifier.5'}


def torchvision_family(name):
    """The TORCHVISION_HEADS entry of a torchvision classifier's name, or None."""
    return next((f for f in sorted(TORCHVISION_HEADS, key=len, reverse=True)
                 if name.startswith(f)), None)


def classification_models():
    """Every model= name this pipeline builds but timm's (timm:<name> for any of those)."""
    import torchvision   # only here: it takes seconds to import
    return sorted(LOCAL_MODELS) + sorted(
        n for n in torchvision.models.list_models(module=torchvision.models)
        if torchvision_family(n))


def check_model_name(name):
    """One clear line when model= names no network this pipeline can build."""
    if name in LOCAL_MODELS:
        return
    if name.startswith(TIMM_PREFIX):
        import timm   # only here: it takes seconds to import
        if name[len(TIMM_PREFIX):] not in timm.list_models():
            fail(f"model={name}: timm has no model of that name; see python -c \"import timm; "
                 "print(timm.list_models('efficientnet*'))\"")
    elif name not in classification_models():
        fail(f"model={name}: choose semnet, semnet_s4, a torchvision classifier "
             f"({', '.join(n for n in classification_models() if n not in LOCAL_MODELS)}) or "
             'timm:<name>')


def has_imagenet_weights(name):
    return name not in LOCAL_MODELS
