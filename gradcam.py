"""Grad-CAM heat maps of a trained run over chosen crops, written as PNG overlays.

    python gradcam.py                                  # 2 correctly classified test crops per class
    python gradcam.py --per-class 4 --version cpu30    #   (read from test.py's predictions.csv)
    python gradcam.py a.tif b.tif --target 811_cycled  # chosen crops, map of a chosen class

Grad-CAM (Selvaraju et al., ICCV 2017): the activations of a layer, weighted per channel by the
mean gradient of the class score, summed, clipped at zero, resized to the input and scaled to
[0, 1]. It shows where in a crop the evidence for the class lies. The layer is by default the
last one with a spatial output, larger than 1 x 1 (ResNet: layer4 from 64 px up;
EfficientNet: features); --layer names another.

Writes <out>/<name>.png (default out: runs/<dataset>/<version>/gradcam/): the crop, and the crop
with the heat map over it, titled with the predicted class and its probability.
"""
import argparse
import os

import pandas as pd
import torch
from tqdm import tqdm

from config import add_checkpoint_argument, add_config_arguments, open_run, run_of_args
from semcnn.data.images import to_tensor
from semcnn.evaluation.gradcam import GradCAM
from semcnn.evaluation.plots import gradcam_png
from semcnn.files.errors import fail, run_main
from semcnn.files.frames import UnreadableImage, read_image
from semcnn.training.checkpoint import load_trained
from semcnn.training.device import pick_device


def chosen_images(args, cfg, run_dir, classes):
    """[(path, title prefix, output name)] from the command line, or correctly classified test
    crops listed in test.py's predictions.csv."""
    if args.images:
        # crops of the same name from different folders get the folder in their PNG's name
        stems = [os.path.splitext(os.path.basename(p))[0] for p in args.images]
        return [(p, '', stem if stems.count(stem) == 1 else
                 os.path.splitext(os.path.normpath(p))[0].replace(os.sep, '__').lstrip('._'))
                for p, stem in zip(args.images, stems)]
    table_path = os.path.join(run_dir, 'predictions.csv')
    if not os.path.isfile(table_path):
        fail(f'{table_path}: not found; run test.py first, or name the images to explain')
    table = pd.read_csv(table_path, dtype={'Image Name': str, 'Label': str})
    right = table[table['Result']].sort_values('Image Name').groupby('Label').head(args.per_class)
    return [(os.path.join(cfg['data_dir'], 'test', name), f'true {label}: ',
             name.replace('/', '__').rsplit('.', 1)[0])
            for name, label in zip(right['Image Name'], right['Label'])]


def main(args):
    if args.per_class < 1:
        fail(f'--per-class {args.per_class}: give 1 or more')
    dataset, version, run_dir = run_of_args(args)
    cfg, path, checkpoint = open_run(args, dataset, version)
    device = pick_device(cfg['device'])
    model, classes = load_trained(cfg, path, checkpoint, device)
    if args.target is not None and args.target not in classes:
        fail(f"--target {args.target}: not a class of this model ({', '.join(classes)})")
    cam = GradCAM(model, cfg['input_size'], args.layer)
    out = args.out or os.path.join(run_dir, 'gradcam')
    os.makedirs(out, exist_ok=True)
    images = chosen_images(args, cfg, run_dir, classes)
    for path, prefix, name in tqdm(images, desc='grad-cam', unit='image'):
        try:
            x = to_tensor(read_image(path), cfg['input_size'])
        except (UnreadableImage, OSError) as e:
            fail(f'{path}: {e}')
        target = None if args.target is None else torch.tensor([classes.index(args.target)])
        maps, probs = cam(x.unsqueeze(0).to(device), None if target is None else target.to(device))
        shown = int(probs[0].argmax()) if target is None else int(target)
        title = (f'{prefix}predicted {classes[int(probs[0].argmax())]} '
                 f'({probs[0].max():.2f}); map of {classes[shown]}')
        gradcam_png(x.mean(0).numpy(), maps[0].cpu().numpy(), os.path.join(out, f'{name}.png'),
                    title)
    print(f'{len(images)} Grad-CAM overlays (layer {cam.layer_name}) -> {out}')


def get_args_parser():
    p = argparse.ArgumentParser(description='Grad-CAM heat-map overlays of a trained run.')
    p.add_argument('images', nargs='*', help='crops to explain (default: correct test crops)')
    add_config_arguments(p)
    add_checkpoint_argument(p)
    p.add_argument('--per-class', type=int, default=2,
                   help='correctly classified test crops per class when no images are named')
    p.add_argument('--target', default=None, help='class whose evidence to show (default: the '
                                                  'predicted class)')
    p.add_argument('--layer', default=None, help='module name of the layer (default: the last '
                                                 'spatial one)')
    p.add_argument('--out', default=None, help='output folder (default <run>/gradcam)')
    return p


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
