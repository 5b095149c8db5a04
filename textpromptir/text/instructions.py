"""The instruction corpus for the text-understanding stage.

Every sentence comes from material written by us in this file: template
families (a few patterns that share one way of phrasing a request) filled from
phrase lists (verbs, nouns, adjectives, subjects, intensifiers, politeness).
Sampling uses a fixed seed, so the same seed always gives the same corpus.

Labels: a sorted subset of DEGRADATIONS (two or three for combined requests);
the empty tuple is the `none` class, prompts that ask for no restoration we
offer (edits, questions, chit-chat, gibberish, and near-misses that *ask for*
a degradation, such as "add rain to the scene").

The validation split holds whole template families, never single sentences,
so it measures how well the encoder copes with phrasings it never saw.

Build and write it with `python -m textpromptir.text.instructions [PATH]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from textpromptir.resources import resource

DEGRADATIONS = ("noise", "rain", "haze", "blur", "low_light", "jpeg")
NONE = "none"
COMBO = "combo"
# The classes corpus counts are reported for: each degradation alone, any
# combination of two or three, and none.
CATEGORIES = (*DEGRADATIONS, COMBO, NONE)
STRENGTHS = ("slight", "moderate", "heavy")
SPLITS = ("train", "val")
# Styles of the families that ask for a restoration, and of those that do not.
STYLES = ("imperative", "request", "descriptive", "question", "casual", "terse", "jargon")
NONE_STYLES = ("edit", "nearmiss", "unsupported", "vague", "question", "chitchat", "caption", "gibberish")
NONE_ACTION_STYLES = ("edit", "nearmiss", "unsupported", "vague")  # the rest is talk, not a request

DEFAULT_PATH = resource("instructions", "corpus.jsonl")

# About this share of the template families of every pool goes to validation.
VAL_FRACTION = 0.18
# Sentences drawn per family: per degradation for the shared families, per
# combination for the combined ones. Small families give fewer (they run dry).
GENERIC_QUOTA = 14
SPECIFIC_QUOTA = 20
PAIR_QUOTA = 3
TRIPLE_QUOTA = 2
NONE_QUOTA = 40
# Give up on a family after this many draws per wanted sentence.
DRAWS_PER_SENTENCE = 30
# Share of sentences that get one or two misspellings from MISSPELLINGS.
MISSPELL_RATE = 0.2
# A strength slot stays empty this often, so most sentences name no strength.
EMPTY_STRENGTH_RATE = 0.45


@dataclass(frozen=True)
class Instruction:
    text: str
    labels: tuple[str, ...]  # sorted subset of DEGRADATIONS; () means none
    strength: str | None  # one of STRENGTHS, or None when no strength word was used
    template: str  # the template family the sentence came from, "style.name"
    split: str  # "train" or "val"


def category(labels: Sequence[str]) -> str:
    """The reporting class of a label set: the degradation, "combo" or "none"."""
    if not labels:
        return NONE
    return labels[0] if len(labels) == 1 else COMBO


def style_of(template: str) -> str:
    return template.split(".", 1)[0]


# ---------------------------------------------------------------------------
# Phrase material shared by every class. The hand-written lists below keep
# several entries per line to stay readable, so the formatter leaves them be.

# fmt: off

COMMON_SLOTS: dict[str, tuple[str, ...]] = {
    "subj": (
        "this photo", "the photo", "this picture", "the picture", "this image", "the image", "my photo",
        "my pic", "this pic", "this shot", "the shot", "this one", "my picture", "this snapshot", "the scan",
        "my image", "the photograph",
    ),
    # What goals act on ("brighten {obj}"): shorter than subjects, as people write them.
    "obj": ("it", "it", "this", "this photo", "the image", "my pic", "the picture", "this shot"),
    "photo_noun": ("photo", "picture", "image", "pic", "shot", "snapshot", "photograph", "scan", "frame"),
    "scene": (
        "night shot", "concert photo", "indoor shot", "selfie", "portrait", "landscape", "street photo",
        "wedding photo", "holiday snap", "group photo", "party pic", "photo of my cat", "beach photo",
        "city shot", "sunset picture", "family photo", "product shot", "old photo",
    ),
    # Empty entries repeat so that most sentences carry no politeness at all.
    "please": (
        "", "", "", "", "please", "pls", "plz", "kindly", "hey,", "hi,", "ok,", "just", "go ahead and", "quickly",
    ),
    "thanks": (
        "", "", "", "", "please", "pls", ", thanks", ", thank you", "thx", "for me", "if you can",
        "if possible", ", ty", ", cheers",
    ),
}

# Strength words by slot, because their grammar differs: before a noun after
# "the" (sadj), instead of an article (sqty), before an adjective (sadv), before
# a terse label (sterse), after a terse verb (spost). "light" is left out on
# purpose: it would be read as a strength in "low light".
STRENGTH_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "sadj": {
        "slight": ("slight", "mild", "faint", "minor", "subtle"),
        "moderate": ("moderate", "noticeable", "medium"),
        "heavy": ("heavy", "severe", "strong", "massive", "extreme", "intense", "terrible", "awful"),
    },
    "sqty": {
        "slight": ("a bit of", "a little", "a touch of", "a hint of", "a little bit of", "slight"),
        "moderate": ("moderate", "noticeable", "quite a bit of", "a fair amount of"),
        "heavy": ("a lot of", "lots of", "tons of", "heavy", "severe", "way too much", "so much", "extreme"),
    },
    "sadv": {
        "slight": ("slightly", "a bit", "a little", "a little bit", "kind of", "kinda", "mildly", "a tad"),
        "moderate": ("moderately", "somewhat", "quite", "fairly", "pretty", "rather", "noticeably"),
        "heavy": (
            "very", "extremely", "super", "really", "incredibly", "insanely", "terribly", "horribly", "badly",
            "way too", "seriously", "totally", "hopelessly",
        ),
    },
    "sterse": {
        "slight": ("mild", "gentle", "slight", "subtle", "minimal"),
        "moderate": ("moderate", "medium", "normal"),
        "heavy": ("strong", "heavy", "aggressive", "max", "maximum", "extreme"),
    },
    "spost": {
        "slight": ("slightly", "a bit", "a little", "gently", "just a touch"),
        "moderate": ("moderately", "somewhat", "a fair amount", "medium"),
        "heavy": ("heavily", "a lot", "hard", "aggressively", "strongly", "to the max", "as much as possible"),
    },
}

# Common misspellings of the words people type most here. Whole words only;
# "artefacts" is British, not wrong, but belongs with the variants all the same.
MISSPELLINGS: dict[str, tuple[str, ...]] = {
    "remove": ("remoev", "remvoe", "rmeove", "reomve", "remov", "rmv"),
    "noise": ("nosie", "noize", "nois", "noice", "niose"),
    "grainy": ("grainey", "grany", "grainny"),
    "grain": ("grian", "grane"),
    "denoise": ("denoize", "denosie", "denoice"),
    "rain": ("rian", "rainn", "raain"),
    "streaks": ("streacks", "straeks", "streks"),
    "derain": ("deraine", "dreain"),
    "haze": ("haez", "haize", "hazee"),
    "hazy": ("hazey", "hazzy", "haizy"),
    "fog": ("fogg", "foog"),
    "foggy": ("foggey", "fogy", "fogyy"),
    "dehaze": ("dehaize", "dehase", "dehze"),
    "blur": ("blurr", "bluhr", "blure"),
    "blurry": ("blury", "blurrey", "bluury", "blurryy"),
    "sharpen": ("sharpn", "sharpin", "shapren"),
    "focus": ("focsu", "fokus"),
    "dark": ("drak", "darc"),
    "brighten": ("brigten", "brighen", "britghen"),
    "brighter": ("brigther", "briter"),
    "underexposed": ("underexposd", "under exposed", "underexpossed"),
    "jpeg": ("jpg", "jepg", "jpge", "jpej"),
    "artifacts": ("artefacts", "artifcats", "artifacs", "artifactes"),
    "compression": ("compresion", "compresssion"),
    "blocky": ("blockey", "bloky"),
    "please": ("pleas", "plese", "pleaze"),
    "photo": ("foto", "phot", "photp"),
    "picture": ("pictrue", "picure"),
    "image": ("imgae", "iamge"),
    "get rid of": ("get ridd of", "get rig of", "getrid of"),
}


# ---------------------------------------------------------------------------
# Per-degradation vocabulary.


@dataclass(frozen=True)
class Vocabulary:
    nouns: tuple[str, ...]  # what is wrong, used after "the" or bare: "noise", "rain streaks"
    adjectives: tuple[str, ...]  # gradable, take "very"/"slightly": "grainy"
    states: tuple[str, ...]  # non-gradable descriptions: "full of noise"
    verbs: tuple[str, ...]  # verbs that take the nouns: "remove", "reduce"
    goals: tuple[str, ...]  # what the user wants instead, may use {obj}: "make {obj} less grainy"
    terse_verbs: tuple[str, ...]  # one-word commands that take an object: "denoise"
    terse_labels: tuple[str, ...]  # names of the operation: "noise reduction"
    terse_fragments: tuple[str, ...]  # what people type in a hurry: "less noise"
    jargon: tuple[str, ...]  # technical nouns: "ISO noise"
    tools: tuple[str, ...]  # an operation to run or apply: "a denoiser"

    def slots(self, suffix: str = "") -> dict[str, tuple[str, ...]]:
        """Slot lists named as templates use them; combos add a role suffix ("_a")."""
        named = {
            "noun": self.nouns,
            "adj": self.adjectives,
            "state": self.states,
            "verb": self.verbs,
            "goal": self.goals,
            "tverb": self.terse_verbs,
            "tlabel": self.terse_labels,
            "tfrag": self.terse_fragments,
            "jargon": self.jargon,
            "tool": self.tools,
        }
        return {name + suffix: values for name, values in named.items()}


VOCABULARY: dict[str, Vocabulary] = {
    "noise": Vocabulary(
        nouns=(
            "noise", "grain", "graininess", "speckles", "speckling", "digital noise", "image noise",
            "noisy pixels", "static", "film grain", "colour speckles", "fine grain", "noisiness", "pixel noise",
        ),
        adjectives=("grainy", "noisy", "speckled", "speckly", "gritty", "mottled", "sandy", "staticky"),
        states=(
            "full of noise", "full of grain", "covered in speckles", "peppered with noise", "riddled with noise",
            "covered in grain", "noise-ridden", "swimming in noise",
        ),
        verbs=(
            "remove", "reduce", "get rid of", "clean up", "eliminate", "suppress", "take out", "kill",
            "smooth out", "cut down", "filter out", "clear up", "minimize", "strip out", "wipe out", "tame", "fix",
        ),
        goals=(
            "make {obj} less grainy", "make {obj} less noisy", "smooth {obj} out", "make {obj} cleaner",
            "clean {obj} up", "make {obj} smooth", "denoise {obj}", "de-noise {obj}", "degrain {obj}",
            "run noise reduction on {obj}", "apply noise reduction to {obj}", "clean the grain off {obj}",
            "give me a noise-free version", "make the sky smooth again",
        ),
        terse_verbs=("denoise", "de-noise", "degrain", "de-grain", "despeckle", "de-speckle"),
        terse_labels=(
            "noise reduction", "noise removal", "denoising", "grain removal", "NR", "noise cleanup",
            "despeckling",
        ),
        terse_fragments=(
            "less noise", "no noise", "no grain", "less grain", "noise", "grain", "too noisy", "too grainy",
            "grainy", "noisy", "reduce noise", "remove noise", "denoise?",
        ),
        jargon=(
            "ISO noise", "high ISO noise", "sensor noise", "chroma noise", "chrominance noise", "color noise",
            "luminance noise", "luma noise", "Gaussian noise", "Poisson noise", "shot noise", "read noise",
            "thermal noise", "photon noise", "high-ISO grain", "AWGN",
        ),
        tools=("a denoiser", "noise reduction", "a noise filter", "a denoising filter", "NR"),
    ),
    "rain": Vocabulary(
        nouns=(
            "rain", "rain streaks", "raindrops", "rain drops", "streaks", "rain lines", "rainfall", "downpour",
            "drizzle", "falling rain", "streaks of rain", "white streaks", "rain marks", "rainy streaks",
        ),
        adjectives=("rainy", "streaky", "rain-streaked", "streaked", "drizzly", "rain-soaked", "rain-covered"),
        states=(
            "full of rain streaks", "covered in rain streaks", "streaked with rain", "ruined by the rain",
            "full of streaks", "covered in raindrops", "hidden behind the rain",
        ),
        verbs=(
            "remove", "get rid of", "erase", "take out", "clean up", "eliminate", "wipe away", "wipe out",
            "clear", "strip out", "filter out", "delete", "scrub out", "lose", "fix",
        ),
        goals=(
            "derain {obj}", "de-rain {obj}", "make {obj} look like it wasn't raining", "show {obj} without the rain",
            "give me {obj} without the rain", "clear the rain from {obj}", "take the rain out of {obj}",
            "make the weather look dry", "make {obj} rain-free", "wipe the streaks off {obj}",
        ),
        terse_verbs=("derain", "de-rain", "unrain", "destreak", "de-streak"),
        terse_labels=("rain removal", "deraining", "rain streak removal", "streak removal", "de-raining"),
        terse_fragments=(
            "no rain", "less rain", "rain", "rain streaks", "too rainy", "rainy", "remove rain", "rain gone",
            "rain be gone", "no streaks", "streaks",
        ),
        jargon=(
            "rain streaks", "streak artifacts", "rain layer", "rain streak pattern", "precipitation streaks",
            "rain occlusion", "oriented streaks", "rain texture",
        ),
        tools=("a derain filter", "rain removal", "a deraining model", "a streak filter"),
    ),
    "haze": Vocabulary(
        nouns=(
            "haze", "fog", "mist", "smog", "haziness", "fogginess", "murk", "murkiness", "milky haze",
            "grey veil", "smoke haze", "pollution haze", "foggy veil",
        ),
        adjectives=("hazy", "foggy", "misty", "smoggy", "murky", "milky", "washed out", "hazed", "fogged up", "smoky"),
        states=(
            "covered in fog", "lost in the haze", "full of haze", "smothered in smog", "veiled in mist",
            "buried in fog", "washed out by haze",
        ),
        verbs=(
            "remove", "get rid of", "clear", "clear up", "cut through", "reduce", "eliminate", "lift", "take out",
            "clean up", "wipe away", "strip away", "burn off", "dissipate", "fix",
        ),
        goals=(
            "dehaze {obj}", "de-haze {obj}", "defog {obj}", "make {obj} clearer", "bring back the contrast",
            "make the distant hills visible", "make the background visible again", "restore the visibility",
            "make {obj} look like a clear day", "clear the air in {obj}", "let me see through the fog",
            "make {obj} less hazy", "make {obj} less foggy",
        ),
        terse_verbs=("dehaze", "de-haze", "defog", "de-fog", "demist", "de-mist", "desmog"),
        terse_labels=(
            "haze removal", "dehazing", "defogging", "fog removal", "mist removal", "smog removal",
            "haze reduction",
        ),
        terse_fragments=(
            "no fog", "no haze", "less haze", "less fog", "haze", "fog", "foggy", "hazy", "too hazy", "too foggy",
            "remove fog", "remove haze", "clear the fog",
        ),
        jargon=(
            "atmospheric haze", "airlight", "atmospheric scattering", "aerosol haze", "veiling haze",
            "haze layer", "smog", "mist", "low-contrast haze", "scattering haze",
        ),
        tools=("a dehaze filter", "dehazing", "haze removal", "a defog filter"),
    ),
    "blur": Vocabulary(
        nouns=(
            "blur", "blurriness", "softness", "smearing", "smudging", "fuzziness", "shake", "camera blur",
            "blurred edges", "lack of focus", "focus problem", "ghosting",
        ),
        adjectives=(
            "blurry", "blurred", "soft", "fuzzy", "smeared", "shaky", "smudged", "unsharp", "out of focus",
            "misfocused", "blurry-looking", "motion-blurred", "defocused",
        ),
        states=(
            "a blurry mess", "all smeared", "not in focus", "not sharp", "smeared by motion",
            "blurred by camera shake",
        ),
        verbs=(
            "remove", "fix", "reduce", "get rid of", "undo", "correct", "eliminate", "take out", "clean up",
            "reverse", "cancel out", "fix up",
        ),
        goals=(
            "sharpen {obj}", "make {obj} sharper", "make {obj} sharp", "deblur {obj}", "de-blur {obj}",
            "bring {obj} into focus", "refocus {obj}", "make {obj} crisp", "make {obj} crisper",
            "make the details sharp", "unblur {obj}", "make {obj} less blurry", "restore the sharpness",
            "get the edges sharp again",
        ),
        terse_verbs=("deblur", "de-blur", "unblur", "sharpen", "refocus", "deshake", "de-shake", "focus"),
        terse_labels=(
            "deblurring", "blur removal", "sharpening", "motion deblurring", "shake reduction", "blur correction",
            "focus correction",
        ),
        terse_fragments=(
            "sharper", "too blurry", "blurry", "blur", "no blur", "less blur", "remove blur", "fix blur",
            "fix focus", "more sharpness", "in focus",
        ),
        jargon=(
            "motion blur", "defocus blur", "camera shake", "out-of-focus blur", "lens defocus", "handheld shake",
            "subject motion blur", "Gaussian blur", "missed focus", "slow-shutter blur", "focus blur", "defocus",
        ),
        tools=("deconvolution", "a deblur filter", "sharpening", "a deblurring model", "shake reduction"),
    ),
    "low_light": Vocabulary(
        nouns=(
            "darkness", "underexposure", "low light", "dim lighting", "poor lighting", "bad lighting",
            "low exposure", "lack of light", "dimness", "gloom",
        ),
        adjectives=("dark", "underexposed", "dim", "gloomy", "shadowy", "underlit"),
        states=(
            "too dark to see", "almost black", "lost in shadow", "not bright enough", "hard to see",
            "in the dark", "barely visible", "badly lit", "poorly lit", "dimly lit",
        ),
        verbs=(
            "fix", "correct", "get rid of", "reduce", "compensate for", "undo", "deal with", "remove",
            "counteract", "fix up",
        ),
        goals=(
            "brighten {obj}", "brighten {obj} up", "lighten {obj}", "lighten {obj} up", "make {obj} brighter",
            "make {obj} lighter", "raise the exposure", "increase the exposure", "boost the exposure",
            "fix the exposure", "bump up the brightness", "lift the shadows", "make {obj} less dark",
            "light {obj} up", "turn up the brightness", "increase the brightness", "make everything visible",
            "expose {obj} properly", "add more light to {obj}", "illuminate {obj}", "bring up the shadows",
            "recover the shadows",
        ),
        terse_verbs=("brighten", "lighten", "illuminate", "relight"),
        terse_labels=(
            "low-light enhancement", "exposure correction", "brightening", "low light enhancement",
            "exposure fix", "shadow recovery", "LLIE",
        ),
        terse_fragments=(
            "brighter", "too dark", "more light", "dark", "underexposed", "more exposure",
            "lighter", "brighten up", "lights on", "exposure +2",
        ),
        jargon=(
            "underexposure", "crushed shadows", "low exposure", "clipped shadows", "insufficient exposure",
            "low illumination", "dark exposure", "low EV",
        ),
        tools=("exposure correction", "a brightness boost", "low-light enhancement", "a shadow lift"),
    ),
    "jpeg": Vocabulary(
        nouns=(
            "JPEG artifacts", "jpeg artifacts", "compression artifacts", "artifacts", "blocks", "blockiness",
            "compression blocks", "jpeg blocks", "compression", "blocky artifacts", "pixelation", "jpeg noise",
            "compression damage", "jpeg mush",
        ),
        adjectives=(
            "blocky", "over-compressed", "overcompressed", "compressed", "pixelated", "artifacty", "crunchy",
            "blotchy", "jpeggy", "mushy", "deep-fried",
        ),
        states=(
            "full of JPEG artifacts", "full of compression artifacts", "covered in blocks", "full of blocks",
            "ruined by compression", "a compressed mess", "riddled with artifacts",
        ),
        verbs=(
            "remove", "get rid of", "clean up", "reduce", "fix", "undo", "eliminate", "smooth out", "repair",
            "take out", "suppress", "clear up",
        ),
        goals=(
            "deblock {obj}", "de-block {obj}", "make {obj} look less compressed", "undo the compression",
            "make {obj} look like the original", "clean up the jpeg", "fix the jpeg", "make {obj} less blocky",
            "smooth out the blocks", "recover the detail lost to compression", "de-jpeg {obj}", "un-jpeg {obj}",
        ),
        terse_verbs=("deblock", "de-block", "dejpeg", "de-jpeg", "unjpeg", "de-artifact", "dering", "de-ring"),
        terse_labels=(
            "deblocking", "artifact removal", "compression artifact removal", "jpeg artifact removal",
            "jpeg cleanup", "deringing", "artifact reduction", "JPEG restoration",
        ),
        terse_fragments=(
            "jpeg", "jpg artifacts", "jpeg artifacts", "too blocky", "blocky", "less blocky", "no blocks",
            "fix jpeg", "fix compression", "compression", "remove artifacts", "artifacts",
        ),
        jargon=(
            "compression artifacts", "JPEG artifacts", "blocking artifacts", "block artifacts", "blocking",
            "ringing", "ringing artifacts", "mosquito noise", "DCT blocking", "quantization artifacts",
            "macroblocking", "color bleeding", "chroma subsampling artifacts", "Gibbs ringing", "8x8 blocking",
        ),
        tools=("a deblocking filter", "artifact removal", "JPEG restoration", "deblocking", "a dering filter"),
    ),
}


# ---------------------------------------------------------------------------
# Template families. A family is a handful of patterns that share one way of
# asking; it is the unit the train/val split works on. Names are "style.name".


@dataclass(frozen=True)
class Family:
    name: str
    patterns: tuple[str, ...]
    slots: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # slots only this family uses

    @property
    def style(self) -> str:
        return style_of(self.name)

    @property
    def arity(self) -> int:
        """How many degradations a pattern names: 3 if it has "_c" slots, 2 for "_a", else 1."""
        text = " ".join(self.patterns)
        return 3 if "_c}" in text else 2 if "_a}" in text else 1

    @property
    def slot_names(self) -> set[str]:
        """The slots its patterns fill directly (not those nested in slot values)."""
        return set(_SLOT.findall(" ".join(self.patterns)))


def family(name: str, *patterns: str, **slots: tuple[str, ...]) -> Family:
    return Family(name, patterns, slots)


# Families that work for every degradation, filled from its Vocabulary.
GENERIC_FAMILIES = (
    family(
        "imperative.remove_the",
        "{please} {verb} the {sadj} {noun} {thanks}", "{please} {verb} the {sadj} {noun} from {subj} {thanks}",
        "{please} {verb} the {noun} in {subj} {thanks}",
    ),
    family("imperative.remove_bare", "{please} {verb} {sqty} {noun} {thanks}", "{verb} {sqty} {noun} from {subj}"),
    family("imperative.goal", "{please} {goal} {thanks}", "just {goal}", "{goal} now"),
    family(
        "imperative.in_subj",
        "in {subj}, {verb} the {noun}", "for {subj}: {verb} the {sadj} {noun}", "on {subj}, {verb} the {noun} please",
    ),
    family(
        "imperative.fix_adj",
        "fix this {adj} {photo_noun}", "repair this {sadv} {adj} {photo_noun}", "fix my {sadv} {adj} {photo_noun}",
        "restore this {adj} {photo_noun}",
    ),
    family(
        "imperative.make_less",
        "make {subj} less {adj}", "make {subj} not {adj} anymore", "{subj} should be less {adj}, fix it",
    ),
    family(
        "imperative.all_of",
        "{verb} all the {noun}", "{verb} all of the {noun} in {subj}", "{verb} all traces of {noun}",
        "{verb} as much {noun} as you can",
    ),
    family(
        "request.want",
        "I want the {noun} gone", "I want {subj} without the {noun}", "I want the {sadj} {noun} removed",
        "I just want the {noun} out of {subj}",
    ),
    family(
        "request.would_like",
        "I'd like you to {verb} the {noun}", "I would like the {sadj} {noun} removed from {subj}",
        "I'd like you to {goal}", "I would like you to {verb} the {noun} in {subj}",
    ),
    family(
        "request.need",
        "I need you to {verb} the {noun}", "I need {subj} without the {noun}", "need the {noun} gone from {subj}",
        "need to {verb} the {sadj} {noun}", "I need to {goal}",
    ),
    family(
        "request.help",
        "help me {verb} the {noun}", "help me {goal}", "please help, {subj} is {sadv} {adj}",
        "I need help with the {sadj} {noun} in {subj}",
    ),
    family(
        "request.would_be_great",
        "it would be great if you could {goal}", "would be nice to {verb} the {noun}",
        "it'd be awesome if the {noun} was gone", "it would help me if you could {verb} the {noun}",
    ),
    family(
        "descriptive.is_adj",
        "{subj} is {sadv} {adj}", "{subj} looks {sadv} {adj}", "it's {sadv} {adj}", "it looks {sadv} {adj}",
        "{subj} came out {sadv} {adj}", "{subj} turned out {sadv} {adj}",
    ),
    family(
        "descriptive.all_adj",
        "it's all {adj}", "everything is {sadv} {adj}", "the whole {photo_noun} is {sadv} {adj}",
        "the entire {photo_noun} looks {adj}",
    ),
    family(
        "descriptive.scene",
        "this {scene} is {sadv} {adj}", "my {scene} came out {sadv} {adj}", "the {scene} I took is {sadv} {adj}",
        "this {scene} is {state}", "my {scene} looks {sadv} {adj}",
    ),
    family(
        "descriptive.there_is",
        "there's {sqty} {noun} in {subj}", "there is {sqty} {noun} all over {subj}", "{subj} has {sqty} {noun}",
        "{subj} has {sadj} {noun} everywhere", "I can see {sqty} {noun} in {subj}",
    ),
    family(
        "descriptive.state",
        "{subj} is {state}", "it's {state}", "the whole thing is {state}", "{subj} is {state}, fix it",
    ),
    family(
        "descriptive.with_fix",
        "{subj} is {sadv} {adj}, please {tverb} it", "it's {sadv} {adj}, can you fix that?",
        "the {noun} is {sadv} bad, {verb} it", "{noun} everywhere, {tverb} {spost}",
    ),
    family(
        "descriptive.complaint",
        "the {noun} is ruining {subj}", "the {sadj} {noun} ruins {subj}", "I hate the {noun} in {subj}",
        "the {noun} makes {subj} unusable", "{subj} is ruined by the {sadj} {noun}",
    ),
    family(
        "descriptive.problem",
        "the problem is the {noun}", "the issue with {subj} is the {sadj} {noun}", "{subj} suffers from {sqty} {noun}",
        "the main problem here is {noun}",
    ),
    family(
        "descriptive.story",
        "I took this and it came out {sadv} {adj}", "my camera made {subj} {sadv} {adj}",
        "my phone always makes pictures {sadv} {adj}", "just got this back and it's {sadv} {adj}",
    ),
    family(
        "question.can_you",
        "can you {verb} the {sadj} {noun}?", "could you {verb} the {noun} in {subj}?", "can you {goal}?",
        "could you please {verb} the {noun}?",
    ),
    family(
        "question.would_you",
        "would you {verb} the {noun} for me?", "would you {verb} the {noun} from {subj}?", "will you {goal}?",
        "would you be able to {goal}?",
    ),
    family(
        "question.possible",
        "is it possible to {verb} the {noun}?", "is there a way to {goal}?",
        "any way to {verb} the {sadj} {noun} in {subj}?", "is there any chance you could {goal}?",
    ),
    family(
        "question.how",
        "how do I {verb} the {noun} in {subj}?", "how can I {goal}?", "how to {verb} {noun}?",
        "what's the best way to {verb} the {noun}?",
    ),
    family(
        "question.why",
        "why is {subj} so {adj}?", "why does {subj} look {sadv} {adj}?", "why is there {sqty} {noun} in {subj}?",
        "why is {subj} {sadv} {adj}? can you fix it?",
    ),
    family(
        "question.anything",
        "can you do something about the {noun}?", "anything you can do about the {sadj} {noun}?",
        "what can you do about the {noun} in {subj}?", "can anything be done about the {noun}?",
    ),
    family(
        "casual.pls",
        "pls {verb} the {noun}", "plz {goal}", "pls fix the {adj} mess", "pls {verb} {noun} thx",
        "can u {verb} the {noun} pls",
    ),
    family("casual.ugh", "ugh the {noun}", "ugh its {sadv} {adj}", "ugh why is it {adj}", "ugh {noun} everywhere"),
    family(
        "casual.slang",
        "yo {verb} the {noun}", "bruh this pic is {sadv} {adj}", "dude the {noun} lol",
        "this is {sadv} {adj} lol fix it",
    ),
    family("casual.fragment", "{noun} gone pls", "too much {noun}", "{adj} pic, fix", "too {adj}, fix pls"),
    family(
        "casual.lazy",
        "just {verb} the {noun} idk", "can u make it not {adj}", "make it not {adj} pls", "get the {noun} outta here",
        "lose the {noun}",
    ),
    family(
        "terse.verb",
        "{tverb}", "{tverb} it", "{tverb} this", "{tverb} pls", "{tverb} {spost}", "{tverb} the {photo_noun}",
    ),
    family("terse.label", "{tlabel}", "{tlabel} please", "{sterse} {tlabel}", "{tlabel} needed", "{tlabel}: {sterse}"),
    family("terse.fragment", "{tfrag}", "{tfrag}!", "{tfrag} pls", "{tfrag} plz"),
    family(
        "jargon.remove",
        "{verb} the {jargon}", "{verb} the {sadj} {jargon} from {subj}", "{subj} has {sqty} {jargon}",
        "there's {sqty} {jargon} here",
    ),
    family("jargon.tool", "run {tool} on {subj}", "apply {tool}", "use {tool} on this", "do a {tverb} pass"),
    family(
        "jargon.technical",
        "{subj} shows {sadj} {jargon}", "correct for {jargon}", "compensate for the {jargon}", "suppress {jargon}",
    ),
)

# Shared families added after the first release. They stay out of the
# validation draw, so validation keeps the first release's 978 sentences and
# figures stay comparable across releases. They carry the operation names
# ({tool}, {tverb}) that the first release used in one or two families only,
# which the split had sent to validation: validation tests unseen sentence
# frames, not unseen words.
ADDED_FAMILIES = (
    family(
        "jargon.tool_needed",
        "{subj} needs {tool}", "could you put {subj} through {tool}?", "I think {tool} would fix {subj}",
        "try {tool} on {subj}", "{subj} could use {tool}",
    ),
    family(
        "imperative.tverb_subj",
        "{please} {tverb} {subj} {thanks}", "{tverb} {subj} {spost}", "can you {tverb} {subj}?",
        "I want you to {tverb} {subj}",
    ),
    # Goals said with nothing around them ("make it lighter") were the largest
    # group of validation misses after the second release; training had each
    # goal only a few times, inside requests and questions.
    family(
        "imperative.goal_want",
        "I want to {goal}", "all I need is to {goal}", "{goal}, that's all", "I'm trying to {goal}",
        "{goal} before I print it", "{goal} so I can post it",
    ),
    family("casual.goal_quick", "can u {goal}", "wanna {goal}", "{goal} asap", "tryna {goal} lol", "{goal} real quick"),
)

# `none` families added after the second release, kept out of the validation
# draw for the same reason: file chores that name a degradation's words
# ("I need it as a jpeg") ask for no restoration.
ADDED_NONE_FAMILIES = (
    family(
        "nearmiss.file_chores",
        "I need {subj} as a {fmt} file", "send it to me as a {fmt}", "{fmt} version please",
        "shrink {subj} to under {size}", "can I get a {fmt} copy?", "keep a {fmt} copy of {subj}",
        fmt=("jpeg", "jpg", "png", "webp", "tiff", "heic", "JPEG"),
        size=("1 MB", "500 KB", "2 MB", "200 KB"),
    ),
)

# Families written for one degradation: the situations, numbers and idioms
# that belong to it alone.
SPECIFIC_FAMILIES: dict[str, tuple[Family, ...]] = {
    "noise": (
        family(
            "descriptive.noise_night",
            "this night shot is {sadv} grainy", "took this at night and it's {sadv} {adj}",
            "indoor shot at a concert, {sadv} {adj}", "the shadows are {sadv} {adj}",
            "the dark areas are full of {noun}",
        ),
        family(
            "jargon.noise_iso",
            "shot at ISO {iso}, {fix}", "ISO {iso} and it shows, {fix}", "high ISO shot, {fix}",
            "had to crank the ISO to {iso}, {fix}", "the ISO was {iso}, {fix}",
            iso=("800", "1600", "3200", "6400", "12800", "25600", "51200", "102400"),
            fix=(
                "please denoise", "remove the noise", "clean up the grain", "reduce the noise", "get rid of the grain",
                "fix the noise", "denoise it", "kill the noise",
            ),
        ),
        family(
            "jargon.noise_channels",
            "{verb} the {channel} noise but keep the detail", "reduce the {channel} noise",
            "there's {sqty} {channel} noise in the sky", "the {channel} noise is {sadv} bad",
            channel=("chroma", "color", "colour", "luminance", "luma", "chrominance", "blue channel", "RGB"),
        ),
        family(
            "casual.noise_phone",
            "my phone camera is trash at night, {verb} the {noun}", "cheap webcam pic, {sadv} {adj}",
            "old phone pic, {adj} as heck", "screenshot from a video call, {sadv} {adj}",
        ),
        family(
            "imperative.noise_smooth",
            "smooth out the {noun} but keep the details", "clean the {noun} out of the sky",
            "{verb} the {noun} in the shadows", "denoise but keep the texture",
            "denoise without making it look plastic", "remove the {sadj} {noun} but keep it natural",
        ),
    ),
    "rain": (
        family(
            "descriptive.rain_weather",
            "it was pouring when I took this{tail}", "shot during a {storm}{tail}",
            "took it in the rain and now there are streaks everywhere{tail}", "the {storm} ruined {subj}{tail}",
            storm=("storm", "downpour", "thunderstorm", "rain shower", "monsoon", "rainstorm", "cloudburst"),
            tail=("", ", can you fix it?", ", please remove the rain", ", get rid of the streaks", ", derain it"),
        ),
        family(
            "descriptive.rain_occlusion",
            "the rain streaks hide the {thing}", "you can't see the {thing} through the {noun}",
            "the {noun} covers the {thing}", "I want to see the {thing} without the rain",
            thing=("street", "faces", "cars", "building", "road", "sign", "storefront", "people", "bridge", "statue"),
        ),
        family(
            "jargon.rain_streaks",
            "remove the {sadj} rain streaks", "single image deraining please", "remove the {angle} streaks",
            "subtract the rain layer", "derain, the streaks are {angle}",
            angle=("diagonal", "vertical", "slanted", "long and thin", "bright white", "dense"),
        ),
        family(
            "casual.rain",
            "rain ruined my pic", "stupid rain, fix it", "why did it have to rain lol, fix it", "the rain ugh",
            "make it look like it wasnt raining", "rain streaks everywhere smh",
        ),
        family(
            "imperative.rain_dry",
            "show the scene without rain", "make {subj} look like it wasn't raining", "take the rain out of {subj}",
            "show me {subj} without the {noun}", "{verb} the {noun} but keep the wet street",
        ),
    ),
    "haze": (
        family(
            "descriptive.haze_visibility",
            "you can barely see the {far} through the {noun}", "the {far} disappear in the {noun}",
            "everything in the distance is {sadv} {adj}", "the {far} are lost in the {noun}",
            "the background is {sadv} {adj}",
            far=(
                "mountains", "hills", "buildings", "distant trees", "towers", "far hills", "skyscrapers", "islands",
                "ships",
            ),
        ),
        family(
            "descriptive.haze_weather",
            "shot on a {foggy} morning, {tail}", "the {city} is covered in {smog}",
            "wildfire smoke made everything {adj}", "there was {sqty} fog when I took this",
            "took this on a {foggy} day and it's all {adj}",
            foggy=("foggy", "misty", "hazy", "smoggy"),
            city=("city", "skyline", "valley", "harbour", "town"),
            smog=("smog", "haze", "fog", "mist"),
            tail=("please dehaze it", "clear it up", "remove the haze", "can you fix that?", "lift the fog"),
        ),
        family(
            "jargon.haze",
            "remove the airlight", "{sadj} atmospheric haze, dehaze please", "estimate the transmission and dehaze",
            "dark channel dehaze", "recover the contrast lost to {noun}", "correct the atmospheric scattering",
        ),
        family(
            "imperative.haze_contrast",
            "bring back the contrast the {noun} took away", "make the {far} visible again", "clear up the {adj} look",
            "cut through the {noun}", "lift the {sadj} {noun}",
            far=("mountains", "hills", "buildings", "trees", "skyline", "bridge"),
        ),
        family(
            "casual.haze",
            "cant see anything its all {adj}", "fog go away", "smog pic, fix pls", "why so {adj} lol",
            "ugh the {noun} again",
        ),
    ),
    "blur": (
        family(
            "descriptive.blur_shake",
            "my hand shook when I took this{tail}", "the shutter was too slow and {subj} is {sadv} {adj}",
            "I moved when I took it{tail}", "the camera moved{tail}", "the {moving} is smeared from motion",
            tail=("", ", please fix", ", sharpen it", ", deblur it", ", can you fix the shake?"),
            moving=("car", "runner", "dog", "cyclist", "train", "kid", "bird"),
        ),
        family(
            "descriptive.blur_focus",
            "the autofocus missed, {fix}", "the focus is off", "the {thing} is out of focus",
            "I focused on the wrong thing and the {thing} is {sadv} blurry", "the lens focused on the background",
            thing=("face", "text", "sign", "subject", "eyes", "license plate", "cat", "flower"),
            fix=("fix it", "sharpen it", "deblur please", "bring it into focus", "can you refocus it?"),
        ),
        family(
            "imperative.blur_readable",
            "make the {text} readable", "sharpen the {text} so I can read it",
            "I can't read the {text}, it's {sadv} {adj}", "bring the {text} into focus",
            text=(
                "text", "sign", "license plate", "writing", "words on the sign", "page", "document", "menu",
                "whiteboard",
            ),
        ),
        family(
            "jargon.blur",
            "remove the {sadj} motion blur", "fix the camera shake", "deconvolve {subj}", "correct the defocus",
            "remove the defocus blur", "estimate the blur kernel and deblur",
        ),
        family(
            "casual.blur",
            "pls fix the blurry mess", "this is a blurry mess, help", "my pic is {sadv} {adj} i cant even",
            "everything is smudgy lol", "blurry pic pls help",
        ),
    ),
    "low_light": (
        family(
            "descriptive.low_light_scene",
            "the room was too dark", "shot at night without flash, {tail}", "the {scene} came out {sadv} dark",
            "I can't see anything, it's {sadv} {adj}", "the faces are {sadv} dark", "it's {sadv} underexposed",
            tail=("brighten it", "can you make it brighter?", "fix the exposure", "lighten it up please"),
        ),
        family(
            "jargon.low_light_exposure",
            "it's underexposed by {n} stops", "push the exposure {ev}", "raise the exposure by {n} stops",
            "bump the EV by {ev}", "recover the shadow detail", "lift the crushed shadows",
            "exposure compensation {ev}",
            n=("one", "two", "three", "2", "3", "a couple of"),
            ev=("+1 EV", "+2 EV", "+1.5 EV", "a stop", "two stops", "+3 EV"),
        ),
        family(
            "imperative.low_light_visible",
            "make the {thing} visible", "light up the {thing}", "I want to see the {thing}, it's too dark",
            "brighten the {thing}",
            thing=(
                "faces", "room", "people", "background", "street", "details in the shadows", "stage", "dog", "corners",
            ),
        ),
        family(
            "casual.low_light",
            "cant see a thing its so dark lol", "too dark pls fix", "lights pls", "its basically black",
            "my pic is {sadv} dark help",
        ),
        family(
            "question.low_light",
            "can you make it brighter?", "could you lighten up the shadows?", "can you turn the lights on in this?",
            "can you brighten the faces?", "is it possible to see what's in the dark part?",
        ),
    ),
    "jpeg": (
        family(
            "descriptive.jpeg_source",
            "I got it from {app} and it's {sadv} {adj}", "downloaded from {app}, now it's {adj}",
            "{app} ruined the quality with compression", "it's been forwarded so many times it's {adj}",
            "it's a screenshot of a screenshot, {adj}", "re-saved as jpeg too many times",
            app=(
                "whatsapp", "facebook", "twitter", "instagram", "telegram", "messenger", "an old forum", "email",
                "a website", "discord",
            ),
        ),
        family(
            "jargon.jpeg_quality",
            "saved at quality {q}, {tail}", "it's a q={q} jpeg, {tail}", "jpeg quality {q}, {tail}",
            "the jpeg was exported at {q}%",
            q=("5", "10", "15", "20", "25", "30", "40"),
            tail=("deblock it", "remove the artifacts", "clean it up", "fix the blocks", "please fix"),
        ),
        family(
            "jargon.jpeg_artifacts",
            "remove the {sadj} blocking", "the edges have ringing, fix it", "there's mosquito noise around the text",
            "remove the 8x8 blocks", "reduce the DCT blocking", "fix the color bleeding from chroma subsampling",
            "the sky has {sqty} macroblocking",
        ),
        family(
            "descriptive.jpeg_blocks",
            "the sky is full of blocks", "I can see the compression blocks",
            "there are square blocks all over the gradients", "the edges have weird halos and blocks",
            "the jpeg is {sadv} blocky",
        ),
        family(
            "casual.jpeg",
            "this jpeg is crunchy", "deep fried pic pls fix", "so compressed lol", "jpeg'd to hell",
            "potato quality jpeg pls fix",
        ),
    ),
}

# Families for two degradations ("_a", "_b") and for three ("_c" as well).
COMBO_FAMILIES = (
    family(
        "imperative.combo_remove",
        "{please} {verb_a} the {noun_a} and the {noun_b}", "{verb_a} the {noun_a} and {verb_b} the {noun_b} {thanks}",
        "{verb_a} both the {noun_a} and the {noun_b} in {subj}",
    ),
    family(
        "imperative.combo_then",
        "{verb_a} the {noun_a}, then {verb_b} the {noun_b}", "first {goal_a}, then {goal_b}",
        "{goal_a} and then {goal_b}",
    ),
    family("imperative.combo_goal", "{goal_a} and {goal_b}", "{please} {goal_a} and also {goal_b}"),
    family(
        "descriptive.combo_adj",
        "it's {adj_a} and {adj_b}", "{subj} is {sadv} {adj_a} and {adj_b}", "{subj} looks {adj_a} and {adj_b}",
        "this {scene} is {adj_a} and {adj_b}",
    ),
    family(
        "descriptive.combo_there",
        "there's {noun_a} and {noun_b} in {subj}", "{subj} has both {noun_a} and {noun_b}",
        "{subj} has {sqty} {noun_a} plus {noun_b}",
    ),
    family(
        "descriptive.combo_mixed",
        "{subj} is {adj_a}, and also {goal_b}", "{verb_a} the {noun_a}, it's also {adj_b}",
        "the {noun_a} is bad and it's {adj_b} too",
    ),
    family(
        "question.combo",
        "can you {verb_a} the {noun_a} and the {noun_b}?", "could you {goal_a} and {goal_b}?",
        "is it possible to {verb_a} the {noun_a} and {verb_b} the {noun_b}?",
    ),
    family(
        "terse.combo",
        "{tverb_a} and {tverb_b} this", "{tverb_a} + {tverb_b}", "{tverb_a}, {tverb_b}", "{tlabel_a} and {tlabel_b}",
        "{tverb_a} then {tverb_b}",
    ),
    family(
        "casual.combo",
        "ugh {adj_a} and {adj_b}, fix pls", "its {adj_a} and {adj_b} lol help",
        "pls {verb_a} the {noun_a} and the {noun_b} thx",
    ),
    family("jargon.combo", "{verb_a} the {jargon_a} and the {jargon_b}", "{subj} has {jargon_a} and {jargon_b}"),
    family(
        "imperative.combo3_remove",
        "{verb_a} the {noun_a}, the {noun_b} and the {noun_c}", "fix the {noun_a}, {noun_b} and {noun_c}",
        "{please} {verb_a} the {noun_a}, {verb_b} the {noun_b} and {verb_c} the {noun_c}",
    ),
    family(
        "descriptive.combo3_adj",
        "it's {adj_a}, {adj_b} and {adj_c}", "{subj} is {adj_a}, {adj_b} and {adj_c}",
        "{subj} is {adj_a} and {adj_b}, and there's {noun_c} too",
    ),
    family(
        "terse.combo3",
        "{tverb_a}, {tverb_b}, {tverb_c}", "{tverb_a} + {tverb_b} + {tverb_c}",
        "{tverb_a}, {tverb_b} and {tverb_c} this",
    ),
    family(
        "question.combo3",
        "can you {verb_a} the {noun_a}, the {noun_b} and the {noun_c}?", "could you {goal_a}, {goal_b} and {goal_c}?",
    ),
    family(
        "casual.combo3",
        "ugh its {adj_a} and {adj_b} and theres {noun_c}", "fix everything: {noun_a}, {noun_b}, {noun_c}",
    ),
    family(
        "descriptive.combo3_list",
        "{subj} has {noun_a}, {noun_b} and {noun_c}", "the problems: {noun_a}, {noun_b}, {noun_c}",
        "three issues: it's {adj_a}, {adj_b} and has {noun_c}",
    ),
)

# Keyboard runs for gibberish: every 3-6 letter stretch of a row, both ways.
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_MASHES = tuple(
    run
    for row in _KEYBOARD_ROWS
    for size in range(3, 7)
    for start in range(len(row) - size + 1)
    for run in (row[start : start + size], row[start : start + size][::-1])
)

# Requests that name no restoration we offer. Near-misses matter most: they
# share words with restorations ("rain", "grain", "darker") but ask for the
# opposite, or for something we cannot do.
NONE_FAMILIES = (
    family(
        "edit.add",
        "{please} add {thing} {place}", "can you add {thing} {place}?", "put {thing} {place}",
        thing=(
            "a dragon", "a rainbow", "a hat", "some birds", "a cat", "fireworks", "a full moon", "a border", "a frame",
            "a watermark", "my logo", "sparkles", "a dog", "a sailboat", "a few clouds", "a person", "stars",
            "a unicorn", "sunglasses", "a caption", "a speech bubble", "a Christmas tree", "balloons", "butterflies",
            "a spaceship", "flowers",
        ),
        place=(
            "", "", "to the sky", "in the background", "on the left", "to the scene", "next to the tree",
            "in the corner", "behind the house", "on the table", "above the mountains",
        ),
    ),
    family(
        "edit.remove_object",
        "{please} {cut} {object}", "{cut} {object} from {subj}", "can you {cut} {object}?",
        cut=("remove", "erase", "delete", "get rid of", "take out", "cut out", "clone out", "paint out", "hide"),
        object=(
            "the person in the background", "the car", "the power lines", "the trash can", "the photobomber",
            "the tourists", "the watermark", "the logo", "the text", "the date stamp", "the tree on the left", "my ex",
            "the background", "the stranger", "the fence", "the bird", "the timestamp", "the sign", "the wires",
            "the guy on the right",
        ),
    ),
    family(
        "edit.style",
        "make {subj} black and white", "turn {subj} into {art}", "make it look like {art}", "convert {subj} to {art}",
        art=(
            "a painting", "a cartoon", "an anime drawing", "a pencil sketch", "pixel art", "a watercolor",
            "an oil painting", "a comic", "a Van Gogh painting", "a 3D render", "a mosaic", "a poster", "line art",
        ),
    ),
    family(
        "edit.colour",
        "make it sepia", "convert to grayscale", "invert the colors", "make the colors pop", "boost the saturation",
        "desaturate {subj}", "warm it up", "make it cooler", "change the hue", "give it a teal and orange look",
        "make the sky more blue", "make it look cinematic", "add a vignette", "make it pastel",
        "make the {part} {colour}",
        part=("sky", "car", "shirt", "walls", "grass", "eyes", "hair", "dress"),
        colour=("red", "blue", "purple", "green", "pink", "gold", "orange"),
    ),
    family(
        "edit.geometry",
        "crop to square", "crop {subj} to {ratio}", "rotate it {deg} degrees", "flip it horizontally",
        "flip {subj} vertically", "resize to {size}", "make it {px} pixels wide", "straighten the horizon", "mirror it",
        "zoom in on the face", "extend the canvas", "crop out the edges",
        ratio=("16:9", "4:3", "1:1", "a square", "portrait", "3:2", "9:16"),
        deg=("90", "180", "45", "15", "-90"),
        size=("1080p", "1920x1080", "512x512", "half size", "A4", "thumbnail size"),
        px=("800", "1024", "2000", "4000"),
    ),
    family(
        "edit.content",
        "change the background to {bg}", "replace the sky with {sky}", "put me on {bg}", "make her smile",
        "give him a beard", "swap the faces", "make the dog look happier", "change the season to {season}",
        "make it look like {season}", "add more people",
        bg=("a beach", "the moon", "Paris", "a white wall", "a forest", "outer space", "a studio backdrop"),
        sky=("a sunset", "a starry night", "blue sky", "clouds", "the aurora"),
        season=("winter", "summer", "autumn", "spring"),
    ),
    family(
        "nearmiss.add_degradation",
        "add {effect} {to}", "can you add {effect} {to}?", "put {effect} on {subj}", "I want {effect} {to}",
        effect=(
            "rain", "rain streaks", "fog", "haze", "mist", "film grain", "grain", "noise", "motion blur", "blur",
            "jpeg artifacts", "compression artifacts", "some rain", "a foggy effect", "a rain effect",
            "a grainy texture", "a light leak", "dust and scratches", "a glitch effect", "a bokeh effect", "snow",
            "smoke", "a haze layer", "lens blur", "heavy rain", "thick fog", "strong motion blur", "a bit of noise",
        ),
        to=("", "", "to the scene", "to {subj}", "to the background", "to the sky"),
    ),
    family(
        "nearmiss.more_degradation",
        "I want more {mass}", "more {mass} please", "increase the {mass}", "make the {mass} stronger",
        "make the rain heavier", "make the fog thicker", "make it grainier", "make it foggier", "make it blurrier",
        mass=("rain", "fog", "grain", "noise", "blur", "haze", "mist", "jpeg compression", "motion blur"),
    ),
    family(
        "nearmiss.make_look",
        "make {subj} look {look}", "I want it to look {look}", "can you make it look {look}?",
        "give {subj} a {style} look",
        look=(
            "foggy", "rainy", "grainy", "old", "blurry", "dreamy", "misty", "moody", "hazy", "like film",
            "like it was shot on film", "like a rainy day", "like night", "like an old jpeg", "low quality", "retro",
            "like a 90s photo", "like a security camera", "like a polaroid", "vintage", "gloomy", "underexposed",
            "out of focus", "mysterious",
        ),
        style=("vintage", "film", "grainy", "foggy", "dreamy", "lo-fi", "noir", "retro", "soft-focus", "rainy"),
    ),
    family(
        "nearmiss.darken",
        "make {subj} darker", "darken {subj}", "darken the {part}", "lower the exposure", "reduce the brightness",
        "turn it into a night scene", "make it night time", "dim it down", "make the shadows deeper", "underexpose it",
        "make it moodier and darker", "make the {part} darker",
        part=("sky", "background", "shadows", "corners", "edges", "clouds", "water"),
    ),
    family(
        "nearmiss.blur_on_purpose",
        "blur the {private}", "pixelate the {private}", "make the background blurry", "add bokeh", "soften the skin",
        "smooth the skin", "make it blurry", "blur everything except the face", "add a tilt-shift effect",
        private=("background", "faces", "license plate", "house number", "kids' faces", "screen", "address"),
    ),
    family(
        "nearmiss.too_bright",
        "it's too bright", "{subj} is overexposed", "the highlights are blown out", "tone down the highlights",
        "the sky is too bright", "it's way too bright, fix it", "the flash made {subj} too bright",
        "recover the blown highlights",
    ),
    family(
        "nearmiss.save",
        "save as jpeg", "export as jpg", "compress it to jpeg", "convert to jpeg", "make the file smaller",
        "reduce the file size", "save at quality {q}", "convert it to png", "lower the quality",
        "make it lower resolution", "downscale it", "compress {subj} for email",
        q=("50", "60", "70", "80", "90", "95"),
    ),
    family(
        "unsupported.other_fix",
        "{please} {fix} {problem}", "can you {fix} {problem}?",
        fix=("remove", "fix", "get rid of", "correct", "repair"),
        problem=(
            "the scratches", "the tear in this old photo", "the red eye", "the white balance", "the reflection",
            "the lens distortion", "the chromatic aberration", "the moire pattern", "the dust spots", "the color cast",
            "the glare", "the perspective", "the shadows on her face", "the yellow tint", "the faded colors",
            "the crease", "the lens flare", "the purple fringing", "the vignetting",
        ),
    ),
    family(
        "unsupported.upscale",
        "colorize {subj}", "upscale it {x}", "upscale {subj}", "increase the resolution", "make it higher resolution",
        "super resolution {x}", "enlarge it {x} without losing quality", "restore the faded colours", "make it 4K",
        x=("2x", "4x", "8x", "by 2", "by 4"),
    ),
    family(
        "vague.improve",
        "fix it", "make it better", "improve it", "enhance", "enhance this {photo_noun}", "restore this {photo_noun}",
        "improve the quality", "make it look good", "make it pretty", "make it nicer", "do your thing", "auto enhance",
        "make it perfect", "just fix it", "whatever you think is best", "make {subj} look professional",
        "can you improve {subj}?",
    ),
    family(
        "question.about_photo",
        "what is in this picture?", "who is this?", "where was this taken?", "when was {subj} taken?",
        "what camera took {subj}?", "how big is {subj}?", "what's the resolution of {subj}?", "is {subj} real?",
        "what breed is the dog?", "how many people are in {subj}?", "what color is the car?",
        "can you describe {subj}?", "what do you see?", "is it raining in this picture?",
        "what's the weather in {subj}?", "is {subj} edited?", "what year is {subj} from?", "what is this building?",
        "was it foggy that day?",
    ),
    family(
        "question.about_tool",
        "what can you do?", "what does denoise mean?", "what is dehazing?", "does this work on videos?",
        "how long does it take?", "is this free?", "which filter should I use?",
        "what's the difference between blur and noise?", "how does this plugin work?",
        "can you explain what deblocking does?", "do you support RAW files?", "what models do you use?",
    ),
    family(
        "chitchat.greeting",
        "hello", "hi", "hey there", "good morning", "thanks", "thank you", "how are you?", "who are you?", "help",
        "test", "testing 123", "ok", "cool", "nice", "lol", "bye", "what's up", "tell me a joke", "good job",
        "you're awesome", "never mind", "cancel", "undo", "nothing", "no", "yes", "idk", "hmm", "hola", "bonjour",
        "merci", "sup", "good night", "are you there?", "what's the weather today?",
    ),
    family(
        "caption.description",
        "this is a photo of my {pet}", "I took this in {place}", "here's a picture from our trip to {place}",
        "this was taken last {time}", "my {relative} in {year}", "the sky is beautiful", "it's a sunset over the sea",
        pet=("cat", "dog", "hamster", "parrot", "horse", "rabbit"),
        place=("Paris", "Rome", "the mountains", "Tokyo", "my backyard", "grandma's house", "Lisbon"),
        time=("summer", "year", "week", "Christmas", "spring"),
        relative=("grandma", "dad", "mom", "brother", "uncle", "aunt"),
        year=("1985", "1972", "1999", "2003", "1964"),
    ),
    family(
        "caption.satisfied",
        "this photo is perfect", "it looks great", "I love this picture", "nice colors", "the photo is fine as it is",
        "don't change anything", "leave it as it is", "no changes needed", "nothing, it's fine",
        "{subj} is already good", "I like {subj} the way it is",
    ),
    family(
        "gibberish.handwritten",
        "asdf qwer", "asdfgh", "qwerty", "lorem ipsum dolor sit amet", "zxcv", "jkl;", "aaaaa", "blah blah", "xyz",
        "123", "...", "?", "!!!", "hjkl", "qwe asd zxc", "sdfsdf", "ghghgh", "foo bar", "lkjh", "mnbv", "a", "42",
        "ppppp", "the the the", "asdf;lkj",
    ),
    family("gibberish.keyboard", "{mash}", "{mash} {mash}", "{mash}{mash}", "{mash} {mash} {mash}", mash=_MASHES),
)

# fmt: on


# ---------------------------------------------------------------------------
# Rendering.

_SLOT = re.compile(r"\{(\w+)\}")


def render(pattern: str, slots: Mapping[str, Sequence[str]], rng: random.Random) -> tuple[str, str | None]:
    """Fill a pattern's slots (values may hold slots themselves); return the text and its strength."""
    strength: str | None = None

    def fill(match: re.Match[str]) -> str:
        nonlocal strength
        name = match.group(1)
        if name in STRENGTH_WORDS:
            if rng.random() < EMPTY_STRENGTH_RATE:
                return ""
            strength = rng.choice(STRENGTHS)
            return rng.choice(STRENGTH_WORDS[name][strength])
        return rng.choice(slots[name])

    text = pattern
    while _SLOT.search(text):
        text = _SLOT.sub(fill, text)
    return tidy(text), strength


def tidy(text: str) -> str:
    """Collapse the spaces that empty slots leave and the space before punctuation."""
    text = " ".join(text.split())
    text = re.sub(r"\s+([,.?!:%])", r"\1", text)
    return text.strip(" ,:")


def misspell(text: str, rng: random.Random) -> str:
    """Replace one or two words that have known misspellings."""
    present = [word for word in MISSPELLINGS if re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE)]
    if not present:
        return text
    for word in rng.sample(present, k=min(len(present), rng.choice((1, 1, 2)))):
        text = re.sub(rf"\b{re.escape(word)}\b", rng.choice(MISSPELLINGS[word]), text, count=1, flags=re.IGNORECASE)
    return text


def surface(text: str, style: str, rng: random.Random) -> str:
    """Vary capitals and final punctuation the way people type: casual and terse text stays lower case."""
    if style in ("casual", "terse", "gibberish"):
        text = text.lower()
        return text.rstrip("?") if style == "casual" and rng.random() < 0.3 else text
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    if text[-1].isalnum():
        ending = rng.random()
        text += "." if ending < 0.25 else "!" if ending < 0.3 else ""
    return text


def normalise(text: str) -> str:
    """The key two sentences count as duplicates under: case, punctuation and spacing ignored."""
    return " ".join(re.sub(r"[^\w']+", " ", text.lower()).split())


# ---------------------------------------------------------------------------
# Building.


def all_families() -> list[Family]:
    specific = itertools.chain.from_iterable(SPECIFIC_FAMILIES.values())
    return [*GENERIC_FAMILIES, *ADDED_FAMILIES, *specific, *COMBO_FAMILIES, *NONE_FAMILIES, *ADDED_NONE_FAMILIES]


def check_families() -> None:
    """Fail early on a misspelt slot, a duplicated family name or two strength slots in one pattern."""
    names = [f.name for f in all_families()]
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicated:
        raise ValueError(f"template family names used twice: {duplicated}")
    known = set(COMMON_SLOTS) | set(STRENGTH_WORDS)
    single = set(VOCABULARY["noise"].slots())
    roles = set().union(*(VOCABULARY["noise"].slots(suffix) for suffix in ("_a", "_b", "_c")))
    for fam in all_families():
        if fam.style not in STYLES + NONE_STYLES:
            raise ValueError(f"{fam.name}: unknown style {fam.style!r}")
        available = known | set(fam.slots) | (roles if fam in COMBO_FAMILIES else single)
        for pattern in (*fam.patterns, *itertools.chain.from_iterable(fam.slots.values())):
            used = _SLOT.findall(pattern)
            if unknown := set(used) - available:
                raise ValueError(f"{fam.name}: unknown slots {sorted(unknown)} in {pattern!r}")
            if sum(name in STRENGTH_WORDS for name in used) > 1:
                raise ValueError(f"{fam.name}: more than one strength slot in {pattern!r}")


def choose_val_families(families: Sequence[Family], rng: random.Random) -> set[str]:
    """Pick about VAL_FRACTION of a pool's families, spread over styles, never a style's last one.

    Taking styles in turns keeps every style in both splits where the pool has
    two families of it; keeping the last family of a style in training makes
    sure training sees every style.
    """
    by_style: dict[str, list[Family]] = {}
    for fam in families:
        by_style.setdefault(fam.style, []).append(fam)
    candidates: dict[str, list[Family]] = {}
    for style, members in by_style.items():
        shuffled = members[:]
        rng.shuffle(shuffled)
        candidates[style] = shuffled[:-1]
    order = sorted(candidates)
    rng.shuffle(order)
    wanted = max(1, round(len(families) * VAL_FRACTION))
    chosen: set[str] = set()
    while len(chosen) < wanted and any(candidates.values()):
        for style in order:
            if candidates[style] and len(chosen) < wanted:
                chosen.add(candidates[style].pop().name)
    return chosen


def val_families(seed: int) -> set[str]:
    """Every family that goes to validation. Shared families are chosen once, for all degradations."""
    pools = {
        "generic": GENERIC_FAMILIES,
        **{f"specific-{name}": families for name, families in SPECIFIC_FAMILIES.items()},
        "pairs": tuple(f for f in COMBO_FAMILIES if f.arity == 2),
        "triples": tuple(f for f in COMBO_FAMILIES if f.arity == 3),
        # Requests for another action and plain talk are drawn apart, so that
        # validation holds some of each.
        "none-actions": tuple(f for f in NONE_FAMILIES if f.style in NONE_ACTION_STYLES),
        "none-talk": tuple(f for f in NONE_FAMILIES if f.style not in NONE_ACTION_STYLES),
    }
    chosen: set[str] = set()
    for pool, families in pools.items():
        chosen |= choose_val_families(families, random.Random(f"{seed}/split/{pool}"))
    return chosen


def sample_family(
    fam: Family,
    labels: tuple[str, ...],
    slot_choices: Sequence[Mapping[str, Sequence[str]]],
    quota: int,
    split: str,
    rng: random.Random,
    seen: dict[str, tuple[str, ...]],
) -> list[Instruction]:
    """Draw up to `quota` new sentences from a family; `seen` holds every key drawn so far.

    `slot_choices` holds one slot table per way of filling the roles (combos
    put their degradations in every order).
    """
    found: list[Instruction] = []
    for _ in range(quota * DRAWS_PER_SENTENCE):
        if len(found) == quota:
            break
        slots = rng.choice(slot_choices)
        text, strength = render(rng.choice(fam.patterns), slots, rng)
        if rng.random() < MISSPELL_RATE:
            text = misspell(text, rng)
        text = surface(text, fam.style, rng)
        key = normalise(text)
        if key in seen:
            if seen[key] != labels:
                raise ValueError(f"{text!r} drawn for both {seen[key]} and {labels}")
            continue
        seen[key] = labels
        found.append(Instruction(text, labels, strength, fam.name, split))
    return found


def combos() -> list[tuple[str, ...]]:
    """Every pair and triple of degradations, in DEGRADATIONS order."""
    return [combo for size in (2, 3) for combo in itertools.combinations(DEGRADATIONS, size)]


def role_slots(order: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Slots for a combined request: the first degradation fills the "_a" slots, the next "_b", then "_c"."""
    slots = dict(COMMON_SLOTS)
    for role, name in zip("abc", order, strict=False):
        slots.update(VOCABULARY[name].slots(f"_{role}"))
    return slots


def build_corpus(seed: int = 0) -> list[Instruction]:
    """The whole corpus, deterministic for a seed: single degradations, then combinations, then none."""
    check_families()
    val = val_families(seed)
    seen: dict[str, tuple[str, ...]] = {}
    corpus: list[Instruction] = []

    def draw(fam: Family, labels: tuple[str, ...], slot_choices: list[dict], quota: int) -> None:
        rng = random.Random(f"{seed}/{fam.name}/{'+'.join(labels) or NONE}")
        split = "val" if fam.name in val else "train"
        corpus.extend(sample_family(fam, labels, slot_choices, quota, split, rng, seen))

    for name in DEGRADATIONS:
        slots = {**COMMON_SLOTS, **VOCABULARY[name].slots()}
        for fam in (*GENERIC_FAMILIES, *ADDED_FAMILIES):
            draw(fam, (name,), [slots], GENERIC_QUOTA)
        for fam in SPECIFIC_FAMILIES[name]:
            draw(fam, (name,), [{**slots, **fam.slots}], SPECIFIC_QUOTA)

    for combo in combos():
        # Roles a, b, c take the degradations in every order, so no class is always named first.
        slot_choices = [role_slots(order) for order in itertools.permutations(combo)]
        for fam in COMBO_FAMILIES:
            if fam.arity == len(combo):
                draw(fam, combo, slot_choices, PAIR_QUOTA if len(combo) == 2 else TRIPLE_QUOTA)

    for fam in (*NONE_FAMILIES, *ADDED_NONE_FAMILIES):
        draw(fam, (), [{**COMMON_SLOTS, **fam.slots}], NONE_QUOTA)
    return corpus


# ---------------------------------------------------------------------------
# Files and the command line.


def write_corpus(path: str | Path, corpus: Iterable[Instruction] | None = None, seed: int = 0) -> list[Instruction]:
    """Write a corpus (built from `seed` when not given) as JSON Lines; return what was written."""
    corpus = build_corpus(seed) if corpus is None else list(corpus)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        for item in corpus:
            record = {
                "text": item.text,
                "labels": list(item.labels),
                "strength": item.strength,
                "template": item.template,
                "split": item.split,
            }
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    return corpus


def read_corpus(path: str | Path) -> list[Instruction]:
    with Path(path).open(encoding="utf-8") as file:
        return [
            Instruction(
                text=record["text"],
                labels=tuple(record["labels"]),
                strength=record["strength"],
                template=record["template"],
                split=record["split"],
            )
            for record in map(json.loads, filter(str.strip, file))
        ]


def counts(corpus: Iterable[Instruction]) -> dict[str, dict[str, int]]:
    """Sentences per reporting class and split."""
    table = {name: dict.fromkeys(SPLITS, 0) for name in CATEGORIES}
    for item in corpus:
        table[category(item.labels)][item.split] += 1
    return table


def format_counts(corpus: Sequence[Instruction]) -> str:
    table = counts(corpus)
    families = {name: {split: set() for split in SPLITS} for name in CATEGORIES}
    for item in corpus:
        families[category(item.labels)][item.split].add(item.template)
    lines = [f"{'class':<10} {'train':>6} {'val':>5} {'total':>6}  families train/val"]
    for name, row in table.items():
        fams = families[name]
        lines.append(
            f"{name:<10} {row['train']:>6} {row['val']:>5} {sum(row.values()):>6}  "
            f"{len(fams['train'])}/{len(fams['val'])}"
        )
    total = {split: sum(row[split] for row in table.values()) for split in SPLITS}
    lines.append(f"{'total':<10} {total['train']:>6} {total['val']:>5} {sum(total.values()):>6}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the instruction corpus and write it as JSON Lines.")
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH, help="output file (.jsonl)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    corpus = write_corpus(args.path, seed=args.seed)
    print(f"wrote {len(corpus)} instructions to {args.path}")
    print(format_counts(corpus))
    return 0


if __name__ == "__main__":
    sys.exit(main())
