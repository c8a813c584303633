"""gankit: generative adversarial networks from theory to production, on PyTorch.

    import gankit
    result = gankit.train("ring8")                # a built-in recipe, a TOML path or a Config
    x, y = gankit.sample(result.run_dir, n=1000)  # samples in the data's own units
    scores = gankit.evaluate(result.run_dir)      # FID, precision/recall, modes... with how they were computed
    gankit.export(result.run_dir, "export", formats=["safetensors", "onnx"])
    x, y = gankit.load("export").generate(16, seed=1)  # no run folder, no training code, no unpickling

    result = gankit.train("wine", data=gankit.from_dataframe(df))  # a table: any DataFrame or CSV
    synth = gankit.sample_table(result.run_dir, n=1000, where=["target=class_1"])  # a DataFrame like df

    result = gankit.train("sr-fashion-mnist")          # image-to-image: pix2pix, srgan, cyclegan
    high = gankit.apply(result.run_dir, low_res)       # [N, C, H, W] pixels in, 4x larger out

    result = gankit.train("anomaly-digits")            # anomaly detection: trained on normal data alone
    gankit.score(result.run_dir, "new.npy", "scores.csv")  # input,score,flag at the run's threshold

    result = gankit.train("semisup-digits")            # semi-supervised: a classifier from 10 labels per class
    gankit.classify(result.run_dir, "new.npy", "predictions.csv")  # input,class,p_<class>... per input
"""

__version__ = "0.1.0"

from .anomaly_scores import score  # noqa: E402
from .semisup_classify import classify  # noqa: E402
from .api import (TrainResult, build_models, evaluate, load_generator, recipe, sample,  # noqa: E402
                  sample_images, sample_sequences, sample_table, sample_text, train)
from .compare_files import compare  # noqa: E402
from .config import Config, load_config  # noqa: E402
from .data import Dataset, from_arrays, from_dataframe, from_sequences, load_data  # noqa: E402
from .errors import GankitError, TrainingDiverged  # noqa: E402
from .export import ExportedGenerator, export, load  # noqa: E402
from .table_export import ExportedTable  # noqa: E402
from .trainer import Trainer  # noqa: E402
from .translate import apply  # noqa: E402
from .scorer_export import ExportedScorer  # noqa: E402
from .translator_export import ExportedTranslator  # noqa: E402

__all__ = ["apply", "classify", "Config", "Dataset", "ExportedGenerator", "ExportedScorer", "ExportedTable", "ExportedTranslator", "GankitError", "TrainResult", "Trainer", "TrainingDiverged", "build_models",
           "compare", "evaluate", "export", "from_arrays", "from_dataframe", "from_sequences", "load", "load_config", "load_data", "load_generator", "recipe", "sample", "sample_images", "sample_sequences", "sample_table", "sample_text", "score", "train"]
