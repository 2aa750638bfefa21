# The only place that knows about the virtual environment and the torch pin.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data
# Every evaluation set beside the checkout (a folder with docs.jsonl or faqs.jsonl), except the full SQuAD
# sets: two thirds of their articles trained the reader, so the SQuAD family is scored on its _test folds.
EVAL_SETS ?= $(filter-out %/squad2_dev/ %/xquad_en/,$(sort $(dir $(wildcard ../shared/eval/*/docs.jsonl ../shared/eval/*/faqs.jsonl))))
# The reader's training data (docs/reader.md).
TRAIN_DATA ?= ../shared/train/squad_train
INDEX  ?= index

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export NO_PROXY := 127.0.0.1,localhost
export no_proxy := 127.0.0.1,localhost

.PHONY: install run test build chat eval bench bench-scale train learning-curve clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,bench,scale]'
	touch $(STAMP)

build: install
	$(BIN)/qa build $(DATA) --index $(INDEX) --if-stale

run: build
	@if [ -f ui.py ]; then $(BIN)/python ui.py --index $(INDEX); else $(BIN)/qa chat --index $(INDEX); fi

chat: build
	$(BIN)/qa chat --index $(INDEX)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

eval: install
	$(BIN)/qa eval $(EVAL_SETS) --out docs/eval.md

bench: install
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.incremental
	$(BIN)/python -m bench.reading
	$(BIN)/python -m bench.reader_latency
	$(BIN)/python -m bench.reader_int8

# Rebuild the shipped reader weights (qa/comprehension/model) from the training data, and the learning curve's
# checkpoints beside them (1 h 10 min on 2 otherwise idle cores; docs/reader.md).
train: install
	$(BIN)/qa train --data $(TRAIN_DATA) --checkpoints 0.25,0.5

# The learning curve as separate runs: the same recipe on a quarter and on a half of the training questions, each
# trained to the end (qa/comprehension/model-data0.25, model-data0.5), then all three scored on the test folds
# (about 1 h 20 min on 2 otherwise idle cores: 21 and 42 min of training, then the scoring; the last point is
# `make train`'s weights; docs/reader.md).
learning-curve: install
	$(BIN)/qa train --data $(TRAIN_DATA) --data-fraction 0.25 --out qa/comprehension/model-data0.25
	$(BIN)/qa train --data $(TRAIN_DATA) --data-fraction 0.5 --out qa/comprehension/model-data0.5
	$(BIN)/python -m bench.reader_curve --runs --json bench/reader_curve_runs.json

# Milvus Lite against the folder store, --ray against one process (about 30 min on 2 cores).
bench-scale: install
	$(BIN)/python -m bench.scale_out

clean:
	rm -rf $(VENV) $(INDEX)/*.json $(INDEX)/*.jsonl $(INDEX)/*.faiss $(INDEX)/*.npy $(INDEX)/bm25
