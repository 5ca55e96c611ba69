"""Why auto (dev) looks below majority vote on goemotions-single:emb35 in labelmodel.md: the protocol there scores
rows no LF covers at random, while the chosen model (wv-dev) labels them with the prior it learned on dev, as
`aggregate` does. This prints both models scored the product's way (argmax; uncovered rows by the model's prior).

    PYTHONPATH=$PWD python eval/labelmodel_protocol_check.py
"""
import sys, numpy as np, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0,'eval')
from labelmodel_suite import load, hard_of, random_tie_scores
from llmlabel.labelmodel import make_model
vs = load('goemotions-single:emb35')
k=vs.k
Ld, yd = vs.L_dev, vs.y_dev
print("k",k,"dev",len(yd),"test",len(vs.y_test), "dev class hist top", np.bincount(yd,minlength=k).argsort()[-3:], "test top", np.bincount(vs.y_test,minlength=k).argsort()[-3:])
m = make_model("wv-dev", k).fit(vs.L, yd, Ld)
pd = m.predict_proba(Ld); pt = m.predict_proba(vs.L_test)
print("wv-dev in-sample dev acc", (pd.argmax(1)==yd).mean(), "test acc", (pt.argmax(1)==vs.y_test).mean())
print("pred dist test top", np.bincount(pt.argmax(1),minlength=k).argsort()[-3:], np.bincount(pt.argmax(1),minlength=k).max()/len(pt))
mv = make_model("mv", k).fit(vs.L)
print("mv dev acc", (mv.predict_proba(Ld).argmax(1)==yd).mean(), "test", (mv.predict_proba(vs.L_test).argmax(1)==vs.y_test).mean())
cov_d=(hard_of(Ld)>=0).any(1).mean(); cov_t=(hard_of(vs.L_test)>=0).any(1).mean()
print("coverage dev", cov_d, "test", cov_t)
