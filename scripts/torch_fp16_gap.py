# transformers' own fp32-vs-fp16 gap on the llama-tiny fixture: the tolerance that precision f16 of our
# WebGPU engine is held to (issue 12, item 3). For each chat of reference.json (ids + greedy) and each
# variant (base, adapter), the per-token log-probs in fp32 and in fp16 (same weights, same device);
# prints the largest |fp16 - fp32| per variant and overall, and fp32's own largest gap to reference.json.
#   python3 torch_fp16_gap.py path/to/llama-tiny [--device cuda]
import argparse, json
import torch
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("fixture")
ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
a = ap.parse_args()
ref = json.load(open(f"{a.fixture}/reference.json"))


def logprobs(model, ids):
    x = torch.tensor([ids], device=a.device)
    with torch.no_grad():
        logits = model(x).logits[0, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, x[0, 1:, None]).squeeze(-1).double().cpu()


out = {"device": a.device, "torch": torch.__version__}
overall = 0.0
for variant in ["chats", "adapter"]:
    runs = {}
    for dtype in [torch.float32, torch.float16]:
        model = AutoModelForCausalLM.from_pretrained(a.fixture, torch_dtype=dtype).to(a.device).eval()
        if variant == "adapter":
            from peft import PeftModel
            model = PeftModel.from_pretrained(model, f"{a.fixture}/adapter").to(a.device).eval()
        runs[dtype] = [logprobs(model, c["ids"] + c["greedy"]) for c in ref[variant]]
    gap = max(float((h - f).abs().max()) for h, f in zip(runs[torch.float16], runs[torch.float32]))
    fp32_vs_ref = max(float((f - torch.tensor(c["sequence_logprobs"], dtype=torch.float64)).abs().max()) for f, c in zip(runs[torch.float32], ref[variant]))
    out[f"{variant}_fp16_vs_fp32_max_abs"] = gap
    out[f"{variant}_fp32_vs_reference_max_abs"] = fp32_vs_ref
    overall = max(overall, gap)
out["fp16_vs_fp32_max_abs"] = overall
print(json.dumps(out))
