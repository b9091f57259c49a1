#!/usr/bin/env python3
"""A small but real trainer for mmon's retrain examples and tests.

Logistic regression by mini-batch SGD on a CSV dataset (pure standard
library). Parameters come from the command line, else from MMON_PARAMS (the
JSON mmon passes), else defaults:

    --lr FLOAT          learning rate (default 0.1)
    --epochs INT        passes over the training split (default 20)
    --batch-size INT    mini-batch size (default 16)
    --l2 FLOAT          L2 penalty (default 0.0)
    --data FILE         CSV with a header, numeric features and a 0/1 'label'
                        column (default: fixtures/train/dataset.csv of this repo)
    --out DIR           output folder (default: MMON_OUTPUT_DIR)
    --seed INT          shuffling seed (default: MMON_SEED, else 0)

Writes model.json (weights, bias, feature names, the parameters used) and
metrics.json (val_accuracy, train_accuracy, val_logloss) into the output
folder. The last 20% of the rows are the validation split. Exits 2 on bad
arguments or data.
"""

import argparse
import csv
import json
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "fixtures", "train", "dataset.csv")
DEFAULTS = {"lr": 0.1, "epochs": 20, "batch_size": 16, "l2": 0.0}


def parse_args(argv):
    p = argparse.ArgumentParser(description="logistic regression by SGD")
    p.add_argument("--lr", type=float)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--l2", type=float)
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--out", default=os.environ.get("MMON_OUTPUT_DIR"))
    p.add_argument("--seed", type=int, default=int(os.environ.get("MMON_SEED", "0")))
    args = p.parse_args(argv)
    from_env = json.loads(os.environ.get("MMON_PARAMS") or "{}")
    params = {}
    for key, default in DEFAULTS.items():
        given = getattr(args, key)
        value = given if given is not None else from_env.get(key, default)
        params[key] = type(default)(value)
    if not args.out:
        p.error("no output folder: pass --out or set MMON_OUTPUT_DIR")
    if params["lr"] <= 0 or params["epochs"] < 1 or params["batch_size"] < 1:
        p.error(f"lr, epochs and batch_size must be positive, got {params}")
    return args, params


def load(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        features = [c for c in reader.fieldnames if c != "label"]
        if "label" not in reader.fieldnames or not features:
            raise ValueError(f"{path}: needs feature columns and a 'label' column")
        rows = [([float(r[c]) for c in features], int(r["label"])) for r in reader]
    if len(rows) < 10:
        raise ValueError(f"{path}: only {len(rows)} rows")
    return features, rows


def sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def predict(w, b, x):
    return sigmoid(sum(wi * xi for wi, xi in zip(w, x)) + b)


def evaluate(w, b, rows):
    correct, loss = 0, 0.0
    for x, y in rows:
        p = min(max(predict(w, b, x), 1e-12), 1 - 1e-12)
        correct += (p >= 0.5) == (y == 1)
        loss -= y * math.log(p) + (1 - y) * math.log(1 - p)
    return correct / len(rows), loss / len(rows)


def train(rows, n_features, params, seed):
    rng = random.Random(seed)
    w, b = [0.0] * n_features, 0.0
    order = list(range(len(rows)))
    for epoch in range(params["epochs"]):
        rng.shuffle(order)
        for start in range(0, len(order), params["batch_size"]):
            batch = [rows[i] for i in order[start:start + params["batch_size"]]]
            gw, gb = [0.0] * n_features, 0.0
            for x, y in batch:
                err = predict(w, b, x) - y
                gw = [g + err * xi for g, xi in zip(gw, x)]
                gb += err
            n = len(batch)
            w = [wi - params["lr"] * (g / n + params["l2"] * wi) for wi, g in zip(w, gw)]
            b -= params["lr"] * gb / n
        acc, loss = evaluate(w, b, rows)
        print(f"epoch {epoch + 1}/{params['epochs']}: train accuracy {acc:.4f}, log loss {loss:.4f}", flush=True)
    return w, b


def main(argv):
    args, params = parse_args(argv)
    try:
        features, rows = load(args.data)
    except (OSError, ValueError, KeyError) as e:
        print(f"train.py: {e}", file=sys.stderr)
        return 2
    cut = int(len(rows) * 0.8)
    train_rows, val_rows = rows[:cut], rows[cut:]
    print(f"training on {len(train_rows)} rows, validating on {len(val_rows)}; params {params}", flush=True)
    w, b = train(train_rows, len(features), params, args.seed)
    train_acc, _ = evaluate(w, b, train_rows)
    val_acc, val_loss = evaluate(w, b, val_rows)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "model.json"), "w") as f:
        json.dump({"kind": "logistic_regression", "features": features, "weights": w, "bias": b,
                   "params": params, "seed": args.seed}, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"val_accuracy": val_acc, "train_accuracy": train_acc, "val_logloss": val_loss}, f, indent=2)
        f.write("\n")
    print(f"val accuracy {val_acc:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
