#!/usr/bin/env bash
# The embedded default: the real pretrained general model on real data (the twins cohort from Debian's
# r-bioc-dirichletmultinomial), imported as QIIME 2 artifacts, tokenized, embedded and summarised; then a
# fine-tuned classifier, its keystone genera and the subjects' trajectories.
set -euo pipefail
cd "$(dirname "$0")/.."
QIIME=.venv/bin/qiime
DATA=demo/data
OUT=demo/results
mkdir -p "$OUT"
[ -f $DATA/table.biom ] || .venv/bin/python scripts/fetch_twins.py $DATA

run() { echo "+ qiime $*"; $QIIME "$@" >/dev/null; }
run tools import --type 'FeatureTable[Frequency]' --input-path $DATA/table.biom \
  --input-format BIOMV210Format --output-path $OUT/table.qza
run tools import --type 'FeatureData[Taxonomy]' --input-path $DATA/taxonomy.tsv \
  --input-format TSVTaxonomyFormat --output-path $OUT/taxonomy.qza
run mgm tokenize --i-table $OUT/table.qza --i-taxonomy $OUT/taxonomy.qza --o-corpus $OUT/corpus.qza
run mgm summarize-corpus --i-corpus $OUT/corpus.qza --o-visualization $OUT/corpus-summary.qzv
run mgm general-model --o-model $OUT/general-model.qza
run mgm embed --i-corpus $OUT/corpus.qza --i-model $OUT/general-model.qza --o-embeddings $OUT/embeddings.qza
run metadata tabulate --m-input-file $OUT/corpus.qza --o-visualization $OUT/corpus.qzv
cp $DATA/metadata.tsv $OUT/sample-metadata.tsv
MD=$OUT/sample-metadata.tsv
# a classifier of BMI class (subjects kept on one side of every split), the default recipe: seconds on a CPU
rm -rf $OUT/classifier
run mgm classify-samples --i-table $OUT/table.qza --i-taxonomy $OUT/taxonomy.qza \
  --m-metadata-file $MD --m-metadata-column bmi_category --m-groups-file $MD --m-groups-column subject \
  --output-dir $OUT/classifier
run mgm keystone-report --i-corpus $OUT/corpus.qza --i-model $OUT/classifier/trained_model.qza \
  --m-metadata-file $MD --m-metadata-column bmi_category --o-visualization $OUT/keystone-genera.qzv
run mgm trajectory --i-embeddings $OUT/embeddings.qza --m-time-file $MD --m-time-column timepoint \
  --m-group-file $MD --m-group-column bmi_category --m-subject-file $MD --m-subject-column subject \
  --o-visualization $OUT/trajectory.qzv
echo
echo "Demo results are in $(pwd)/$OUT:"
echo "  corpus.qza           twins samples as MGM sentences   (view: qiime tools view $OUT/corpus.qzv)"
echo "  corpus-summary.qzv   vocabulary coverage, dropped genera, sentence lengths"
echo "  general-model.qza    the pretrained MGM general model"
echo "  embeddings.qza       256-d sample embeddings (PCoAResults)"
echo "  classifier/          fine-tuned BMI classifier, predictions and evaluation.qzv (beside a RandomForest)"
echo "  keystone-genera.qzv  the genera the classifier attends to, per BMI class"
echo "  trajectory.qzv       samples and subjects through the embedding space, by BMI class"
