"""Figures as PNG files: learning curves and confusion matrices."""
import numpy as np

from semcnn.files.atomic import save_figure_atomic


def pyplot():
    """matplotlib.pyplot drawing to files only (no display needed), imported when a figure is
    drawn: it takes a second, which a script's --help or a refused input should not wait."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def learning_curve(history, path):
    """Loss and accuracy per epoch, train and validation, from train.py's history rows."""
    epochs = [h['epoch'] for h in history]
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (('train', '-o'), ('val', '-s')):
        ax_loss.plot(epochs, [h[f'{split}_loss'] for h in history], style, label=split, ms=3)
        ax_acc.plot(epochs, [100 * h[f'{split}_acc'] for h in history], style, label=split, ms=3)
    # epoch 0 is a linear probe (train.py, probe_views): its training rows are of the crops as
    # they are, the epochs' of augmented crops
    xlabel = 'epoch (0: linear probe)' if 0 in epochs else 'epoch'
    ax_loss.set(xlabel=xlabel, ylabel='cross-entropy loss', title='Loss')
    ax_acc.set(xlabel=xlabel, ylabel='accuracy (%)', title='Accuracy')
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    save_figure_atomic(fig, path)
    plt.close(fig)


def confusion_matrix_png(matrix, classes, path, title='Confusion matrix'):
    """Counts with row-normalised colour, true class down, predicted class across."""
    matrix = np.asarray(matrix)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * len(classes) + 2)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(share, cmap='Blues', vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label='share of true class')
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha='right')
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel='predicted', ylabel='true', title=title)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(matrix[i, j]), ha='center', va='center', fontsize=8,
                    color='white' if share[i, j] > 0.5 else 'black')
    save_figure_atomic(fig, path)
    plt.close(fig)


def gradcam_png(image, cam, path, title):
    """A gray crop beside the same crop with its Grad-CAM heat map (jet, half transparent)."""
    plt = pyplot()
    fig, (ax_image, ax_cam) = plt.subplots(1, 2, figsize=(8, 4.4))
    for ax in (ax_image, ax_cam):
        ax.imshow(image, cmap='gray', vmin=0, vmax=1)
        ax.axis('off')
    overlay = ax_cam.imshow(cam, cmap='jet', alpha=0.45, vmin=0, vmax=1)
    fig.colorbar(overlay, ax=ax_cam, fraction=0.046, pad=0.04, label='Grad-CAM')
    fig.suptitle(title, fontsize=10)
    save_figure_atomic(fig, path)
    plt.close(fig)


def image_grid_png(cells, path, columns):
    """Gray images in a grid, each titled; a cell's heat map (Grad-CAM, or None) is drawn over
    its image as in gradcam_png. cells: [(image H x W in [0, 1], map or None, title)]."""
    rows = -(-len(cells) // columns)
    plt = pyplot()
    fig, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.7 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, (image, cam, title) in zip(axes.flat, cells):
        ax.imshow(image, cmap='gray', vmin=0, vmax=1)
        if cam is not None:
            ax.imshow(cam, cmap='jet', alpha=0.45, vmin=0, vmax=1)
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    save_figure_atomic(fig, path)
    plt.close(fig)
