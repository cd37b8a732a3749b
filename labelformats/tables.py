"""The published class tables of Pascal VOC, Cityscapes and CamVid."""

from __future__ import annotations

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")


def voc_palette(n: int = 256) -> list[tuple[int, int, int]]:
    """VOC's colour map: the bits of the index spread over R, G, B from the high bit down."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


# Cityscapes' label table (cityscapesScripts labels.py): id, name, trainId (255 = not evaluated), colour.
CITYSCAPES_LABELS = (
    (0, "unlabeled", 255, (0, 0, 0)), (1, "ego vehicle", 255, (0, 0, 0)),
    (2, "rectification border", 255, (0, 0, 0)), (3, "out of roi", 255, (0, 0, 0)),
    (4, "static", 255, (0, 0, 0)), (5, "dynamic", 255, (111, 74, 0)), (6, "ground", 255, (81, 0, 81)),
    (7, "road", 0, (128, 64, 128)), (8, "sidewalk", 1, (244, 35, 232)), (9, "parking", 255, (250, 170, 160)),
    (10, "rail track", 255, (230, 150, 140)), (11, "building", 2, (70, 70, 70)), (12, "wall", 3, (102, 102, 156)),
    (13, "fence", 4, (190, 153, 153)), (14, "guard rail", 255, (180, 165, 180)),
    (15, "bridge", 255, (150, 100, 100)), (16, "tunnel", 255, (150, 120, 90)), (17, "pole", 5, (153, 153, 153)),
    (18, "polegroup", 255, (153, 153, 153)), (19, "traffic light", 6, (250, 170, 30)),
    (20, "traffic sign", 7, (220, 220, 0)), (21, "vegetation", 8, (107, 142, 35)), (22, "terrain", 9, (152, 251, 152)),
    (23, "sky", 10, (70, 130, 180)), (24, "person", 11, (220, 20, 60)), (25, "rider", 12, (255, 0, 0)),
    (26, "car", 13, (0, 0, 142)), (27, "truck", 14, (0, 0, 70)), (28, "bus", 15, (0, 60, 100)),
    (29, "caravan", 255, (0, 0, 90)), (30, "trailer", 255, (0, 0, 110)), (31, "train", 16, (0, 80, 100)),
    (32, "motorcycle", 17, (0, 0, 230)), (33, "bicycle", 18, (119, 11, 32)),
    # license plate: id -1 in labels.py (not in the PNGs); datumaro and other tools write it as 34.
    (34, "license plate", 255, (0, 0, 142)),
)
CITYSCAPES_TRAIN = tuple((name, color) for _, name, train, color in sorted(
    (row for row in CITYSCAPES_LABELS if row[2] != 255), key=lambda row: row[2]))

# CamVid's 32 classes and colours (label_colors.txt of the release); "Void" is not labelled.
CAMVID32 = (
    ((64, 128, 64), "Animal"), ((192, 0, 128), "Archway"), ((0, 128, 192), "Bicyclist"), ((0, 128, 64), "Bridge"),
    ((128, 0, 0), "Building"), ((64, 0, 128), "Car"), ((64, 0, 192), "CartLuggagePram"), ((192, 128, 64), "Child"),
    ((192, 192, 128), "Column_Pole"), ((64, 64, 128), "Fence"), ((128, 0, 192), "LaneMkgsDriv"),
    ((192, 0, 64), "LaneMkgsNonDriv"), ((128, 128, 64), "Misc_Text"), ((192, 0, 192), "MotorcycleScooter"),
    ((128, 64, 64), "OtherMoving"), ((64, 192, 128), "ParkingBlock"), ((64, 64, 0), "Pedestrian"),
    ((128, 64, 128), "Road"), ((128, 128, 192), "RoadShoulder"), ((0, 0, 192), "Sidewalk"),
    ((192, 128, 128), "SignSymbol"), ((128, 128, 128), "Sky"), ((64, 128, 192), "SUVPickupTruck"),
    ((0, 0, 64), "TrafficCone"), ((0, 64, 64), "TrafficLight"), ((192, 64, 128), "Train"), ((128, 128, 0), "Tree"),
    ((192, 128, 192), "Truck_Bus"), ((64, 0, 64), "Tunnel"), ((192, 192, 0), "VegetationMisc"),
    ((0, 0, 0), "Void"), ((64, 192, 0), "Wall"),
)
CAMVID_VOID = "Void"
# The 11-class form (SegNet's): each group is named after, and coloured like, its first member's class.
CAMVID11 = (
    ("sky", ("Sky",)), ("building", ("Building", "Archway", "Bridge", "Tunnel", "Wall")),
    ("pole", ("Column_Pole", "TrafficCone")), ("road", ("Road", "LaneMkgsDriv", "LaneMkgsNonDriv")),
    ("sidewalk", ("Sidewalk", "ParkingBlock", "RoadShoulder")), ("tree", ("Tree", "VegetationMisc")),
    ("sign/symbol", ("SignSymbol", "Misc_Text", "TrafficLight")), ("fence", ("Fence",)),
    ("car", ("Car", "OtherMoving", "SUVPickupTruck", "Truck_Bus", "Train")),
    ("pedestrian", ("Pedestrian", "Child", "CartLuggagePram", "Animal")),
    ("bicyclist", ("Bicyclist", "MotorcycleScooter")),
)


def camvid_colors(form: int) -> list[tuple[tuple[int, int, int], str]]:
    """(colour, class name) of CamVid's 32- or 11-class colour form, Void left out.

    The 11-class table holds every one of the 32 colours, each under its group's name, so masks in
    either colour form read into the 11 classes.
    """
    if form == 32:
        return [(c, n) for c, n in CAMVID32 if n != CAMVID_VOID]
    if form == 11:
        group = {member: name for name, members in CAMVID11 for member in members}
        return [(c, group[n]) for c, n in CAMVID32 if n != CAMVID_VOID]
    raise ValueError(f"CamVid comes in 11 and 32 classes, not {form}")


def camvid11_color(name: str) -> tuple[int, int, int]:
    first = dict(CAMVID11)[name][0]
    return next(c for c, n in CAMVID32 if n == first)
