"""Image files of every kind a user's folder holds, decoded as a viewer would show them."""

import numpy as np
import pytest
import torch
from PIL import Image

from cvae_lightning.data.decode import decode_resized, has_colour, is_image_file, read_image
from cvae_lightning.data.resize import resize_square, to_channels


def save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


@pytest.fixture
def rgb() -> np.ndarray:
    a = np.zeros((20, 30, 3), np.uint8)
    a[:, :10] = (200, 30, 30)  # red left third
    a[:, 10:20] = (30, 200, 30)
    a[:, 20:] = (30, 30, 200)
    return a


def test_png_and_jpeg_decode_to_the_same_colours(tmp_path, rgb):
    png = read_image(save(Image.fromarray(rgb), tmp_path / "a.png"), 3)
    jpg = read_image(save(Image.fromarray(rgb), tmp_path / "a.jpg", quality=95), 3)
    assert png.shape == jpg.shape == (20, 30, 3)
    assert np.array_equal(png, rgb)
    assert np.abs(jpg.astype(int) - rgb).mean() < 8  # JPEG blurs colour at the edges


def test_grey_to_one_channel_matches_pillow(tmp_path, rgb):
    grey = read_image(save(Image.fromarray(rgb), tmp_path / "a.png"), 1)
    assert grey.shape == (20, 30, 1)
    assert np.array_equal(grey[..., 0], np.asarray(Image.fromarray(rgb).convert("L")))
    # The tensor path that array sources (CIFAR-10) take gives the same pixels.
    t = to_channels(torch.from_numpy(rgb).permute(2, 0, 1)[None], 1)
    assert torch.equal(t[0, 0], torch.from_numpy(grey[..., 0]))


def test_rgba_is_flattened_on_white(tmp_path):
    a = np.zeros((8, 8, 4), np.uint8)
    a[..., 0] = 255
    a[:4, :, 3] = 255  # top half opaque red, bottom half transparent
    out = read_image(save(Image.fromarray(a, "RGBA"), tmp_path / "a.png"), 3)
    assert out[0, 0].tolist() == [255, 0, 0] and out[7, 0].tolist() == [255, 255, 255]


def test_palette_gif_first_frame_and_bmp(tmp_path, rgb):
    frames = [Image.fromarray(rgb).convert("P"), Image.new("P", (30, 20))]
    gif = tmp_path / "a.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    out = read_image(gif, 3)
    assert out.shape == (20, 30, 3) and out[:, :10, 0].mean() > 150  # frame 0, not the black one
    bmp = read_image(save(Image.fromarray(rgb), tmp_path / "a.bmp"), 3)
    assert np.array_equal(bmp, rgb)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    a = np.full((4, 4), 32768, np.uint16)  # mid-grey in 16 bits
    a[0, 0] = 65535
    out = read_image(save(Image.fromarray(a), tmp_path / "a.png"), 1)
    assert out[1, 1, 0] == 128 and out[0, 0, 0] == 255


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    img = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    out = read_image(save(img, tmp_path / "a.jpg"), 3)
    assert out.shape == (8, 8, 3) and out[..., 0].mean() > 200 and out[..., 1].mean() < 60


def test_exif_rotation_is_applied(tmp_path):
    a = np.zeros((10, 20), np.uint8)  # landscape, bright left edge
    a[:, :2] = 255
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    out = read_image(save(img, tmp_path / "a.jpg", exif=exif, quality=100), 1)
    assert out.shape == (20, 10, 1)  # shown portrait
    assert out[:2, :, 0].mean() > 200  # the bright edge is now on top


def test_colour_is_told_from_the_header(tmp_path, rgb):
    assert has_colour(save(Image.fromarray(rgb), tmp_path / "c.png"))
    assert not has_colour(save(Image.fromarray(rgb).convert("L"), tmp_path / "g.png"))
    grey_palette = Image.fromarray(rgb).convert("L").convert("P")
    assert not has_colour(save(grey_palette, tmp_path / "p.png"))


def test_non_square_images_are_resized_on_the_shorter_side_and_centre_cropped(tmp_path):
    a = np.zeros((40, 80), np.uint8)
    a[:, 20:60] = 255  # the centre square is white, the sides black
    out = decode_resized(save(Image.fromarray(a), tmp_path / "a.png"), 1, 16)
    assert out.shape == (1, 16, 16) and out.float().mean() > 250


def test_image_files_are_told_by_their_suffix(tmp_path):
    assert is_image_file(tmp_path / "a.JPG") and is_image_file(tmp_path / "b.webp")
    assert not is_image_file(tmp_path / "notes.txt")


def test_resize_keeps_the_digit_centred():
    images = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    images[0, 0, 10:18, 10:18] = 200
    out = resize_square(images, 64)
    assert out.shape == (1, 1, 64, 64) and out.dtype == torch.uint8
    ys, xs = torch.nonzero(out[0, 0] > 100, as_tuple=True)
    assert ys.float().mean().item() == pytest.approx(31.5, abs=0.5)
    assert xs.float().mean().item() == pytest.approx(31.5, abs=0.5)
