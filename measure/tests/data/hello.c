unsigned long long efi_main(void *image, void *systab) { (void)image; (void)systab; return 0; }
const char note[] = "kms-measure authenticode test vector";
