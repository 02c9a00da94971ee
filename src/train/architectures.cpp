// logreg, mlp, cnn (GroupNorm or none) and resnet8 (GroupNorm). No BatchNorm anywhere:
// its running statistics are not gossiped and break under label skew.
#include "architectures.hpp"

#include <algorithm>
#include <numeric>

#include "rumor/common/error.hpp"

namespace rumor::train::detail {
namespace {

namespace nn = torch::nn;

std::int64_t numel(const std::vector<std::int64_t>& shape) {
  return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
}

nn::GroupNorm group_norm(std::int64_t channels) {
  return nn::GroupNorm(nn::GroupNormOptions(std::gcd<std::int64_t>(channels, 8), channels));
}

struct Mlp : Net {
  std::vector<nn::Linear> layers;
  Mlp(std::int64_t in, const std::vector<int>& hidden, std::int64_t classes) {
    std::int64_t prev = in;
    for (std::size_t i = 0; i <= hidden.size(); ++i) {
      const std::int64_t out = i < hidden.size() ? hidden[i] : classes;
      layers.push_back(register_module("fc" + std::to_string(i + 1), nn::Linear(prev, out)));
      prev = out;
    }
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = x.flatten(1);
    for (std::size_t i = 0; i < layers.size(); ++i) {
      x = layers[i]->forward(x);
      if (i + 1 < layers.size()) x = torch::relu(x);
    }
    return x;
  }
  // Backpropagation written out: about a dozen tensor ops, no autograd graph, no gradient
  // zeroing or accumulation (mm_out/sum_out write the flat gradient buffer directly).
  // For a 784-128-10 MLP at batch 32 this is ~1.4x the autograd step rate on one thread.
  bool manual_backward(const torch::Tensor& x, const std::int64_t* labels, double& loss,
                       std::size_t& correct) override {
    torch::NoGradGuard no_grad;
    const std::size_t n_layers = layers.size();
    std::vector<torch::Tensor> inputs(n_layers), pre(n_layers);
    torch::Tensor h = x.flatten(1);
    for (std::size_t i = 0; i < n_layers; ++i) {
      inputs[i] = h;
      pre[i] = torch::addmm(layers[i]->bias, h, layers[i]->weight.t());
      h = i + 1 < n_layers ? torch::relu(pre[i]) : pre[i];
    }
    torch::Tensor d = torch::log_softmax(h, 1).contiguous();
    const std::int64_t batch = d.size(0);
    const std::int64_t k = d.size(1);
    float* p = d.data_ptr<float>();
    double nll = 0.0;
    correct = 0;
    for (std::int64_t r = 0; r < batch; ++r) {
      const float* row = p + r * k;
      nll -= row[labels[r]];
      correct += (std::max_element(row, row + k) - row) == labels[r];
    }
    loss = nll / static_cast<double>(batch);
    // d(mean cross-entropy)/d(logits) = (softmax - onehot) / batch
    d.exp_();
    for (std::int64_t r = 0; r < batch; ++r) p[r * k + labels[r]] -= 1.0f;
    d.mul_(1.0 / static_cast<double>(batch));
    for (std::size_t i = n_layers; i-- > 0;) {
      at::mm_out(layers[i]->weight.mutable_grad(), d.t(), inputs[i]);
      at::sum_out(layers[i]->bias.mutable_grad(), d, {0});
      if (i > 0) d = torch::threshold_backward(torch::mm(d, layers[i]->weight), pre[i - 1], 0);
    }
    return true;
  }
};

struct Cnn : Net {
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::GroupNorm gn1{nullptr}, gn2{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};
  Cnn(const std::vector<std::int64_t>& shape, std::int64_t classes, int channels, bool norm) {
    const std::int64_t c = channels;
    conv1 = register_module("conv1",
                            nn::Conv2d(nn::Conv2dOptions(shape[0], c, 5).padding(2).bias(!norm)));
    conv2 =
        register_module("conv2", nn::Conv2d(nn::Conv2dOptions(c, 2 * c, 5).padding(2).bias(!norm)));
    if (norm) {
      gn1 = register_module("gn1", group_norm(c));
      gn2 = register_module("gn2", group_norm(2 * c));
    }
    const std::int64_t flat = 2 * c * (shape[1] / 4) * (shape[2] / 4);
    fc1 = register_module("fc1", nn::Linear(flat, 128));
    fc2 = register_module("fc2", nn::Linear(128, classes));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = conv1->forward(x);
    if (gn1) x = gn1->forward(x);
    x = torch::max_pool2d(torch::relu(x), 2);
    x = conv2->forward(x);
    if (gn2) x = gn2->forward(x);
    x = torch::max_pool2d(torch::relu(x), 2);
    return fc2->forward(torch::relu(fc1->forward(x.flatten(1))));
  }
};

struct BasicBlock : nn::Module {
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, shortcut{nullptr};
  nn::GroupNorm gn1{nullptr}, gn2{nullptr}, gn_shortcut{nullptr};
  BasicBlock(std::int64_t in, std::int64_t out, std::int64_t stride) {
    conv1 = register_module(
        "conv1", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
    gn1 = register_module("gn1", group_norm(out));
    conv2 =
        register_module("conv2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
    gn2 = register_module("gn2", group_norm(out));
    if (stride != 1 || in != out) {
      shortcut = register_module(
          "shortcut", nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)));
      gn_shortcut = register_module("gn_shortcut", group_norm(out));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = torch::relu(gn1->forward(conv1->forward(x)));
    h = gn2->forward(conv2->forward(h));
    const torch::Tensor skip = shortcut ? gn_shortcut->forward(shortcut->forward(x)) : x;
    return torch::relu(h + skip);
  }
};

// ResNet-8: a 3x3 stem, three stages of one basic block (16, 32, 64 channels by
// default; strides 1, 2, 2), global average pooling, a linear classifier.
struct ResNet8 : Net {
  nn::Conv2d stem{nullptr};
  nn::GroupNorm gn_stem{nullptr};
  std::shared_ptr<BasicBlock> block1, block2, block3;
  nn::Linear fc{nullptr};
  ResNet8(std::int64_t in_channels, std::int64_t classes, std::int64_t width) {
    stem = register_module(
        "stem", nn::Conv2d(nn::Conv2dOptions(in_channels, width, 3).padding(1).bias(false)));
    gn_stem = register_module("gn_stem", group_norm(width));
    block1 = register_module("block1", std::make_shared<BasicBlock>(width, width, 1));
    block2 = register_module("block2", std::make_shared<BasicBlock>(width, 2 * width, 2));
    block3 = register_module("block3", std::make_shared<BasicBlock>(2 * width, 4 * width, 2));
    fc = register_module("fc", nn::Linear(4 * width, classes));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(gn_stem->forward(stem->forward(x)));
    x = block3->forward(block2->forward(block1->forward(x)));
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return fc->forward(x);
  }
};

void require_image(const ModelSpec& spec, const ModelInput& input) {
  if (input.shape.size() != 3 || input.shape[1] < 4 || input.shape[2] < 4) {
    throw ConfigError(
        "model '" + spec.name +
        "' needs image data (per-sample shape C x H x W, at least 4 x 4); this dataset "
        "has flat features: use model 'mlp' or 'logreg'");
  }
}

}  // namespace

std::shared_ptr<Net> build_net(const ModelSpec& spec, const ModelInput& input) {
  const std::int64_t in = numel(input.shape);
  const std::int64_t classes = input.num_classes;
  if (spec.name == "logreg") return std::make_shared<Mlp>(in, std::vector<int>{}, classes);
  if (spec.name == "mlp") {
    for (int h : spec.hidden) {
      if (h < 1) throw ConfigError("model 'mlp': hidden sizes must be >= 1");
    }
    return std::make_shared<Mlp>(in, spec.hidden, classes);
  }
  if (spec.name == "cnn") {
    require_image(spec, input);
    if (spec.norm != "group" && spec.norm != "none") {
      throw ConfigError(
          "model 'cnn': norm must be 'group' or 'none' (BatchNorm is not supported: its "
          "statistics are not gossiped), got '" +
          spec.norm + "'");
    }
    if (spec.channels < 1) throw ConfigError("model 'cnn': channels must be >= 1");
    return std::make_shared<Cnn>(input.shape, classes, spec.channels, spec.norm == "group");
  }
  if (spec.name == "resnet8") {
    require_image(spec, input);
    // resnet8's width: 16 unless the spec asks otherwise (ModelSpec::channels defaults to cnn's
    // 32).
    const int width = spec.channels == ModelSpec{}.channels ? 16 : spec.channels;
    if (width < 1) throw ConfigError("model 'resnet8': channels must be >= 1");
    return std::make_shared<ResNet8>(input.shape[0], classes, width);
  }
  throw ConfigError("unknown model '" + spec.name +
                    "'; valid: logreg, mlp, cnn, resnet8, torchscript");
}

}  // namespace rumor::train::detail
