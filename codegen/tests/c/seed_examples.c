/*
 * The two C usage examples of seed 002 ("Service Registration" and "Embedding Request"),
 * copied verbatim into functions that declare the variables they use. They must compile
 * unchanged against generated/c/vexfs.h (codegen/tests/c_header.rs).
 */
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vexfs.h"

void service_registration(int fd, const char *service_id, const char *service_name,
                          const uint32_t *dimensions, uint32_t num_dimensions,
                          const char *endpoint);
void embedding_request(int fd, const float *input_data, uint32_t data_size);

void service_registration(int fd, const char *service_id, const char *service_name,
                          const uint32_t *dimensions, uint32_t num_dimensions,
                          const char *endpoint)
{
struct IpcServiceRegisterRequest request = {
    .service_id_ptr = (uint64_t)service_id,
    .service_id_len = strlen(service_id),
    .service_name_ptr = (uint64_t)service_name,
    .service_name_len = strlen(service_name),
    .dimensions_ptr = (uint64_t)dimensions,
    .dimensions_count = num_dimensions,
    .max_batch_size = 100,
    .endpoint_ptr = (uint64_t)endpoint,
    .endpoint_len = strlen(endpoint),
    .flags = 0,
};

ioctl(fd, VEXFS_IOCTL_IPC_REGISTER_SERVICE, &request);
}

void embedding_request(int fd, const float *input_data, uint32_t data_size)
{
struct IpcEmbeddingRequest request = {
    .request_id = 0,  // Auto-assign
    .dimensions = 768,
    .data_ptr = (uint64_t)input_data,
    .data_size = data_size,
    .data_type = 0,  // Float32
    .priority = 128, // Normal priority
    .timeout_ms = 30000,
    .flags = 0,
};

ioctl(fd, VEXFS_IOCTL_IPC_SEND_EMBEDDING_REQUEST, &request);
}
